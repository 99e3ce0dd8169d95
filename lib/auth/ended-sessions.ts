// Ended sessions, as every gateway sees them: a NATS KV bucket (JetStream,
// durable) with one key per session that ended before its tokens expired.
// The user service writes a key when LogOut, RevokeSession or ChangePassword
// ends a session; each gateway watches the bucket into a Set, so checking a
// token costs one Set lookup and no call. Keys live as long as a token
// can (the bucket's max age is at least the token lifetime), after which
// the token's own expiry refuses it.
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { EventBus } from "../events/bus.js";
import { TokenError, type TokenVerifier } from "./token.js";

export const ENDED_SESSIONS_BUCKET = "chirp_sessions_ended";

/** A token lifetime longer than any the user service is configured with is made the bucket's max age when it starts (ensureEndedSessionsBucket). */
const DEFAULT_MAX_AGE_MS = 8 * 24 * 3_600_000;

/** The bucket, created if missing (by whichever process comes first). */
export function openEndedSessions(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(ENDED_SESSIONS_BUCKET, { history: 1, ttl: DEFAULT_MAX_AGE_MS });
}

/** The bucket, its max age raised to at least `tokenTtlMs` plus a margin (the user service's token lifetime). */
export async function ensureEndedSessionsBucket(bus: EventBus, tokenTtlMs: number): Promise<KV> {
  const { nc, jsm } = await bus.ready();
  const kv = await openEndedSessions(nc);
  const stream = `KV_${ENDED_SESSIONS_BUCKET}`;
  const info = await jsm.streams.info(stream);
  const wantNs = (tokenTtlMs + 3_600_000) * 1_000_000;
  if (info.config.max_age !== 0 && info.config.max_age < wantNs) await jsm.streams.update(stream, { ...info.config, max_age: wantNs });
  return kv;
}

/** Announces that `sessionIds` (of `userId`) ended: once this resolves, gateways refuse their tokens within moments. */
export async function announceSessionsEnded(kv: KV, userId: bigint, sessionIds: readonly bigint[]): Promise<void> {
  await Promise.all(sessionIds.map((sid) => kv.put(String(sid), String(userId))));
}

export interface EndedSessions {
  /** Whether the session (a token's `sid`) has ended. */
  has(sessionId: string): boolean;
  /** Resolves true once the bucket's contents have been read (false after `timeoutMs` without). */
  ready(timeoutMs: number): Promise<boolean>;
  /** Whether the watch is current now (it was read through and is still open). */
  readonly current: boolean;
  close(): Promise<void>;
}

interface FollowOptions {
  readonly bus: EventBus;
  readonly log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Told each time the watch is (re)opened and read through, or lost. */
  readonly onState?: (current: boolean) => void;
}

/**
 * Watches the bucket for as long as the process runs: through NATS outages
 * it resumes from the last revision it saw, so no ended session is missed.
 */
export function followEndedSessions(opts: FollowOptions): EndedSessions {
  const ended = new Set<string>();
  const stop = new AbortController();
  let current = false;
  let lastRevision = 0;
  let markReady!: () => void;
  const firstRead = new Promise<void>((resolve) => (markReady = resolve));
  const setCurrent = (value: boolean): void => {
    if (value === current) return;
    current = value;
    opts.onState?.(value);
    if (value) markReady();
  };

  const run = async (): Promise<void> => {
    for (let attempt = 0; !stop.signal.aborted; attempt++) {
      try {
        const { nc } = await opts.bus.ready(stop.signal);
        const kv = await openEndedSessions(nc);
        const status = await kv.status();
        const watch = await kv.watch(lastRevision > 0 ? { resumeFromRevision: lastRevision + 1 } : {});
        const stopWatch = (): void => watch.stop();
        stop.signal.addEventListener("abort", stopWatch, { once: true });
        // Nothing to read through: current at once. Otherwise when the entry with no more pending after it arrives.
        if (status.values === 0 || lastRevision > 0) setCurrent(true);
        attempt = 0;
        try {
          for await (const e of watch) {
            if (e.operation === "PUT") ended.add(e.key);
            else ended.delete(e.key);
            lastRevision = Math.max(lastRevision, e.revision);
            if (e.delta === 0 || e.isUpdate) setCurrent(true);
          }
        } finally {
          // A watch that ends (NATS went away) is opened again: one abort listener per open watch, not one per attempt.
          stop.signal.removeEventListener("abort", stopWatch);
        }
      } catch (err) {
        if (stop.signal.aborted) return;
        opts.log.warn({ err: (err as Error).message }, "ended-sessions watch failed; retrying");
      }
      setCurrent(false);
      if (stop.signal.aborted) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)).unref());
    }
  };
  void run();

  return {
    has: (sid) => ended.has(sid),
    get current() {
      return current;
    },
    async ready(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const ok = await Promise.race([firstRead.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))]);
      clearTimeout(timer);
      return ok;
    },
    async close() {
      stop.abort();
    },
  };
}

/** `verifier`, refusing tokens of ended sessions (TokenError "session_ended"). */
export function refusingEndedSessions(verifier: TokenVerifier, ended: Pick<EndedSessions, "has">): TokenVerifier {
  return {
    verify(token, now) {
      const claims = verifier.verify(token, now);
      if (ended.has(claims.sid)) throw new TokenError("session_ended");
      return claims;
    },
  };
}
