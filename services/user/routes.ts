import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  BatchGetUsersResponseSchema,
  GetUserResponseSchema,
  LogInResponseSchema,
  SignUpResponseSchema,
  UpdateProfileResponseSchema,
  type UserService,
} from "../../gen/chirp/user/v1/user_service_pb.js";
import { callerOf, requireCaller } from "../lib/auth/caller.js";
import { REQUEST_ID_HEADER } from "../lib/rpc/metadata.js";
import { parseBirthDate } from "./birth-date.js";
import type { UserContext } from "./context.js";
import { presentUser } from "./present.js";
import { ClaimLostError, claimKey, type ClaimKey, type UserRow } from "./store.js";

/** The one answer to a failed log-in, whichever part was wrong. */
export const LOGIN_FAILED = "wrong handle or password";

const TAKEN: Readonly<Record<ClaimKey["kind"], string>> = {
  handle: "handle already taken",
  email: "email already registered",
};

/** UserService handlers: validate what the proto cannot, call the store, shape the response. */
export function routes(ctx: UserContext): Partial<ServiceImpl<typeof UserService>> {
  const { store, passwords, tokens, users } = ctx;

  const session = (row: UserRow): string => tokens.sign(String(row.id), users.tokenTtlSeconds).token;

  /** Claims `c` for `id`, taking over a claim whose sign-up died before writing its user (after the grace period). */
  const claimOrTakeOver = async (c: ClaimKey, id: bigint): Promise<void> => {
    const result = await store.claim(c, id);
    if (result === "claimed") return;
    const stale = result.ageMs >= users.claimGraceMs && !(await store.userExists(result.userId));
    if (stale && (await store.takeOver(c, result.userId, id, users.claimGraceMs))) {
      ctx.log.warn({ claim: c.kind, stale_user_id: result.userId, age_ms: result.ageMs }, "took over an abandoned sign-up claim");
      return;
    }
    throw new ConnectError(TAKEN[c.kind], Code.AlreadyExists);
  };

  return {
    async signUp(req, hctx) {
      const birthDate = parseBirthDate(req.birthDate);
      // The slow part first, before any row is locked or claimed.
      const passwordHash = await passwords.hash(req.password);
      const id = ctx.ids.next();
      const claims = [claimKey("handle", req.handle), claimKey("email", req.email)];
      const held: ClaimKey[] = [];
      let row: UserRow;
      try {
        for (const c of claims) {
          await claimOrTakeOver(c, id);
          held.push(c);
        }
        row = await store.createUser(
          { id, handle: req.handle, displayName: req.displayName, email: req.email, passwordHash, birthDate },
          claims,
          requestId(hctx),
        );
      } catch (err) {
        // Give back what this sign-up claimed when its user row certainly
        // does not exist: it failed before the user's transaction, or that
        // transaction refused because a claim was lost. After any other
        // failure the commit may have happened, so the claims stay; if it
        // did not, the next sign-up for them takes them over after the grace.
        const userNotWritten = held.length < claims.length || err instanceof ClaimLostError;
        if (userNotWritten) await releaseQuietly(held, id);
        if (err instanceof ClaimLostError) throw new ConnectError(TAKEN[err.claim], Code.AlreadyExists);
        throw err;
      }
      return create(SignUpResponseSchema, { user: presentUser(row, { withEmail: true }), token: session(row) });
    },

    async logIn(req) {
      // Primary reads: a log-in right after sign-up must find the account.
      const userId = await store.userIdByHandle(req.handle, "primary");
      // The same reads and one argon2 verification (a dummy one without an
      // account) either way, so neither the answer nor its timing tells
      // whether the handle exists. No user has id 0.
      const row = await store.credentials(userId ?? "0");
      const ok = await passwords.verify(row?.password_hash, req.password);
      if (row === undefined || !ok) throw new ConnectError(LOGIN_FAILED, Code.Unauthenticated);
      const rehash = passwords.needsRehash(row.password_hash) ? await passwords.hash(req.password) : undefined;
      await store.recordLogin(row.id, rehash);
      return create(LogInResponseSchema, { user: presentUser(row, { withEmail: true }), token: session(row) });
    },

    async getUser(req, hctx) {
      let userId: string | undefined;
      if (req.lookup.case === "userId") {
        userId = String(req.lookup.value);
      } else if (req.lookup.case === "handle") {
        // A replica within the lag bound, then the primary for a handle just signed up.
        userId = (await store.userIdByHandle(req.lookup.value, "reader")) ?? (await store.userIdByHandle(req.lookup.value, "primary"));
      }
      const row = userId === undefined ? undefined : ((await store.user(userId, "reader")) ?? (await store.user(userId, "primary")));
      if (row === undefined) throw new ConnectError("user not found", Code.NotFound);
      const own = callerOf(hctx) === BigInt(row.id);
      return create(GetUserResponseSchema, { user: presentUser(row, { withEmail: own }) });
    },

    async updateProfile(req, hctx) {
      const caller = requireCaller(hctx);
      const row = await store.updateProfile(caller, { displayName: req.displayName, bio: req.bio }, requestId(hctx));
      if (row === undefined) throw new ConnectError("user not found", Code.NotFound);
      return create(UpdateProfileResponseSchema, { user: presentUser(row, { withEmail: true }) });
    },

    async batchGetUsers(req) {
      // Skeleton (unique ids in request order) -> hydrate (per shard) -> present.
      const wanted = [...new Set(req.userIds)];
      const byId = new Map((await store.usersByIds(wanted)).map((row) => [String(row.id), row]));
      const users = wanted.flatMap((id) => {
        const row = byId.get(String(id));
        return row === undefined ? [] : [presentUser(row, { withEmail: false })];
      });
      return create(BatchGetUsersResponseSchema, { users });
    },
  };

  async function releaseQuietly(held: readonly ClaimKey[], id: bigint): Promise<void> {
    for (const c of held) {
      try {
        await store.release(c, id);
      } catch (err) {
        // Left behind, it is taken over after the grace period.
        ctx.log.warn({ err, claim: c.kind }, "could not release a sign-up claim");
      }
    }
  }
}

function requestId(hctx: HandlerContext): string | undefined {
  return hctx.requestHeader.get(REQUEST_ID_HEADER) ?? undefined;
}
