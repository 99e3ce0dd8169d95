import { Code, ConnectError } from "@connectrpc/connect";
import type { KV } from "@nats-io/kv";
import { ensureEndedSessionsBucket } from "../../lib/auth/ended-sessions.js";
import { createTokenSigner, type TokenSigner } from "../../lib/auth/token.js";
import type { ServiceContext } from "../../lib/service-context.js";
import { loadUserConfig, type UserConfig } from "./config.js";
import { createHandleCache, type HandleCache } from "./handle-cache.js";
import { createPasswordHasher, type PasswordHasher } from "./passwords.js";
import { createSessions, recordSessionActivity, type Sessions } from "./sessions.js";
import { createUserStore, type UserStore } from "./store.js";
import type { EventConsumer } from "../../lib/events/consumer.js";
import { consumeUserDeleted } from "../../lib/events/user-deleted.js";

/** The user service's consumer of UserDeleted: ends and deletes the sessions of a deleted account. */
export const USER_ERASE_DURABLE = "user-account-erase";

/** The shared service context plus what accounts need: the store, the hasher and the token signer. */
export interface UserContext extends ServiceContext {
  readonly users: UserConfig;
  readonly store: UserStore;
  readonly passwords: PasswordHasher;
  /** Signs session tokens; this process alone holds the private key. */
  readonly tokens: TokenSigner;
  /** Sessions: begun at sign-up and log-in, ended by LogOut, RevokeSession and ChangePassword (sessions.ts). */
  readonly sessions: Sessions;
  /**
   * Handle -> user id in Redis (handle-cache.ts), for BatchGetUsers' and
   * GetUser's handles. Undefined without Redis or with
   * CHIRP_USER_HANDLE_CACHE_TTL_MS=0: every handle is read from MySQL.
   */
  readonly handleCache: HandleCache | undefined;
}

export async function createUserContext(shared: ServiceContext): Promise<UserContext & { close(): Promise<void> }> {
  const users = loadUserConfig(shared.env);
  const tokens = createTokenSigner(users.tokenPrivateKey);
  const passwords = await createPasswordHasher(users.passwordHash);
  shared.log.info({ argon2id: users.passwordHash, token_ttl_s: users.tokenTtlSeconds, token_kid: tokens.kid }, "accounts configured");
  // The ended-sessions bucket, opened on first use (NATS may come up later); ending a session waits for it.
  let bucket: Promise<KV> | undefined;
  const ended = (): Promise<KV> => {
    if (shared.bus === undefined) return Promise.reject(new ConnectError("sessions cannot end without NATS (NATS_URL)", Code.Unavailable));
    bucket ??= ensureEndedSessionsBucket(shared.bus, users.tokenTtlSeconds * 1000).catch((err: unknown) => {
      bucket = undefined;
      throw new ConnectError("sessions cannot end now: NATS is unavailable", Code.Unavailable, undefined, undefined, err);
    });
    return bucket;
  };
  const sessions = createSessions({ router: shared.router, ids: shared.ids, tokens, tokenTtlSeconds: users.tokenTtlSeconds, ended });
  const handleCache =
    shared.redis === undefined || users.handleCacheTtlMs === 0
      ? undefined
      : createHandleCache({ redis: shared.redis, ttlMs: users.handleCacheTtlMs, log: shared.log.child({ component: "handle-cache" }), metrics: shared.metrics });
  const stopActivity = shared.bus === undefined ? () => {} : recordSessionActivity(shared.bus, sessions, shared.log.child({ component: "sessions" }));
  // A deleted account's sessions: ended (again: a log-in may have raced the
  // deletion) and their rows deleted. Idempotent: what is left is erased.
  let eraser: EventConsumer | undefined;
  if (shared.bus !== undefined) {
    const log = shared.log.child({ component: "account-erase" });
    eraser = consumeUserDeleted({
      bus: shared.bus,
      durable: USER_ERASE_DURABLE,
      erase: async (userId) => {
        const rows = await sessions.erase(userId);
        log.info({ user_id: String(userId), sessions: rows }, "deleted account's sessions erased");
      },
      log,
      metrics: shared.metrics,
    });
  }
  return {
    ...shared,
    users,
    tokens,
    passwords,
    sessions,
    handleCache,
    store: createUserStore(shared.router),
    // Reverse order of opening: the consumer (before the bus), then the activity reports.
    close: async () => {
      await eraser?.stop();
      stopActivity();
    },
  };
}
