import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { timestampFromMicros } from "../../lib/db/db-time.js";
import {
  BatchGetUsersResponseSchema,
  ChangePasswordResponseSchema,
  DeleteAccountResponseSchema,
  GetUserResponseSchema,
  ListSessionsResponseSchema,
  LogOutResponseSchema,
  RevokeSessionResponseSchema,
  SessionSchema,
  LogInResponseSchema,
  SignUpResponseSchema,
  UpdateProfileResponseSchema,
  type UserService,
} from "../../gen/chirp/user/v1/user_service_pb.js";
import { callerOf, requireCaller, requireSession } from "../../lib/auth/caller.js";
import { USER_AGENT_HEADER, requestIdOf } from "../../lib/rpc/metadata.js";
import { parseBirthDate } from "./birth-date.js";
import type { UserContext } from "./context.js";
import { announceProfileUpdated, announceUserCreated, announceUserDeleted } from "./events.js";
import { LeaseExpiredError, startClaimLease } from "./lease.js";
import type { User } from "../../gen/chirp/user/v1/user_pb.js";
import { presentUser } from "./present.js";
import { UserNotWrittenError, claimKey, type ClaimKey, type UserRow } from "./store.js";
import { lowerAscii } from "../../lib/shard/vindex.js";

/** ChangePassword's answer to a wrong current password. */
export const WRONG_PASSWORD = "current password is wrong";

/** DeleteAccount's answer to a wrong password. */
export const DELETE_WRONG_PASSWORD = "password is wrong";

/** The one answer to a failed log-in, whichever part was wrong. */
export const LOGIN_FAILED = "wrong handle or password";

const TAKEN: Readonly<Record<ClaimKey["kind"], string>> = {
  handle: "handle already taken",
  email: "email already registered",
};

/** A sign-up that ran out of its lease before its COMMIT (a slow or overloaded system): nothing is left behind, so it may be retried at once. */
export const SIGN_UP_TOO_SLOW = "sign-up took too long; try again";

/** A sign-up that could not clear the handle's cached owner (Redis away): nothing is left behind, so it may be retried. */
export const SIGN_UP_UNAVAILABLE = "sign-up cannot be completed now; try again";

/** Handles resolved to user ids, and the handle cache fill of what was read for them (resolveHandles). */
interface ResolvedHandles {
  readonly ids: ReadonlyMap<string, bigint>;
  /** Caches the claims read of the users in `found` (those whose profile the call found). */
  fill(found: ReadonlySet<bigint>): Promise<void>;
}

/** UserService handlers: validate what the proto cannot, call the store, shape the response. */
export function routes(ctx: UserContext): Partial<ServiceImpl<typeof UserService>> {
  const { store, passwords, tokens, users } = ctx;

  /** A new session of the user, described by the client's User-Agent, and its token. */
  const session = (row: UserRow, hctx: HandlerContext): Promise<string> => ctx.sessions.begin(row.id, hctx.requestHeader.get(USER_AGENT_HEADER) ?? "");

  /**
   * Claims `c` for `id`, taking over a claim whose sign-up died before writing
   * its user (after the grace period). False when the value is taken.
   */
  const claimOrTakeOver = async (c: ClaimKey, id: bigint): Promise<boolean> => {
    const result = await store.claim(c, id);
    if (result === "claimed") return true;
    if (result.ageMs >= users.claimGraceMs && (await store.takeOver(c, result.userId, id, users.claimGraceMs))) {
      ctx.log.warn({ claim: c.kind, stale_user_id: String(result.userId), age_ms: result.ageMs }, "took over an abandoned sign-up claim");
      return true;
    }
    return false;
  };

  return {
    async signUp(req, hctx) {
      const birthDate = parseBirthDate(req.birthDate);
      // The slow part first, before any row is claimed.
      const passwordHash = await passwords.hash(req.password);
      const id = ctx.ids.next();
      const claims = [claimKey("handle", req.handle), claimKey("email", req.email)];
      // Every step below asks one member and holds nothing while it waits for
      // another. The lease starts before the first claim goes out: the user
      // row is committed within its window or not at all, long before any
      // claim of this sign-up is old enough to be taken over.
      const lease = startClaimLease(users.signUpCommitWindowMs);
      const inTime = (): void => {
        try {
          lease.check();
        } catch (err) {
          throw new ConnectError(SIGN_UP_TOO_SLOW, Code.Unavailable, undefined, undefined, err);
        }
      };
      // Claims that may be this sign-up's: made, taken over, or sent with no answer.
      const mine: ClaimKey[] = [];
      let writing = false;
      let row: UserRow;
      try {
        for (const c of claims) {
          mine.push(c);
          if (!(await claimOrTakeOver(c, id))) {
            mine.pop();
            throw new ConnectError(TAKEN[c.kind], Code.AlreadyExists);
          }
        }
        // The handle is this sign-up's now. An owner cached before (one whose
        // deletion has released the claim but not yet cleared the cache, or
        // crashed in between; a dead sign-up's claim just taken over) goes
        // before the user row is written, so no read after this sign-up
        // returns resolves the handle to anyone else (handle-cache.ts).
        try {
          await ctx.handleCache?.invalidate([req.handle]);
        } catch (err) {
          throw new ConnectError(SIGN_UP_UNAVAILABLE, Code.Unavailable, undefined, undefined, err);
        }
        inTime();
        writing = true;
        row = await store.createUser(
          { id, handle: req.handle, displayName: req.displayName, email: req.email, passwordHash, birthDate },
          inTime,
          announceUserCreated(ctx.ids, requestIdOf(hctx)),
        );
      } catch (err) {
        // Give back what this sign-up may have claimed when its user row
        // certainly does not exist: it failed before the user's transaction,
        // or before that transaction's COMMIT was sent (the lease ran out,
        // no connection, a statement failed). Only a failure at the COMMIT
        // leaves the outcome unknown, and the claims stay: if the row was not
        // written, the next sign-up for them takes them over after the grace.
        const notWritten = !writing || err instanceof UserNotWrittenError;
        if (notWritten) await releaseQuietly(mine, id);
        const cause = err instanceof UserNotWrittenError ? err.cause : err;
        if (ConnectError.from(cause).cause instanceof LeaseExpiredError) {
          ctx.log.warn({ elapsed_ms: Math.round(lease.elapsedMs()), window_ms: users.signUpCommitWindowMs }, "sign-up ran out of its claim lease");
        }
        throw cause;
      }
      // Cheap insurance for the timing assumptions the lease rests on: read
      // the claims back (one member at a time, no locks). A claim naming
      // another user now means a takeover went ahead although this row was
      // committed, which the lease rules out unless clocks or commit times
      // broke their bounds.
      const lost = await lostClaims(claims, id);
      if (lost.length > 0) {
        ctx.log.error(
          { user_id: String(id), lost, elapsed_ms: Math.round(lease.elapsedMs()), window_ms: users.signUpCommitWindowMs },
          "sign-up committed its user row but a claim of it was taken over: the claim lease's timing assumptions failed",
        );
        throw new ConnectError("sign-up could not be completed", Code.Internal);
      }
      return create(SignUpResponseSchema, { user: presentUser(row, { withEmail: true }), token: await session(row, hctx) });
    },

    async logIn(req, hctx) {
      // Primary reads: a log-in right after sign-up must find the account.
      const userId = await store.userIdByHandle(req.handle, "primary");
      // The same reads and one argon2 verification (a dummy one without an
      // account) either way, so neither the answer nor its timing tells
      // whether the handle exists. No user has id 0.
      const row = await store.credentials(userId ?? 0n);
      const ok = await passwords.verify(row?.passwordHash, req.password);
      if (row === undefined || !ok) throw new ConnectError(LOGIN_FAILED, Code.Unauthenticated);
      const rehash = passwords.needsRehash(row.passwordHash) ? await passwords.hash(req.password) : undefined;
      await store.recordLogin(row.id, rehash);
      return create(LogInResponseSchema, { user: presentUser(row, { withEmail: true }), token: await session(row, hctx) });
    },

    async logOut(_req, hctx) {
      const userId = requireCaller(hctx);
      await ctx.sessions.end(userId, requireSession(hctx), true);
      return create(LogOutResponseSchema);
    },

    async changePassword(req, hctx) {
      const userId = requireCaller(hctx);
      const current = requireSession(hctx);
      const row = await store.credentials(userId);
      if (row === undefined) throw new ConnectError("user not found", Code.NotFound);
      if (!(await passwords.verify(row.passwordHash, req.currentPassword))) throw new ConnectError(WRONG_PASSWORD, Code.PermissionDenied);
      const passwordHash = await passwords.hash(req.newPassword);
      // Other sessions end before the password changes: a failure between leaves the old password working, so the call can be made again.
      const ended = await ctx.sessions.endAllBut(userId, current);
      await store.recordLogin(userId, passwordHash);
      ctx.log.info({ user_id: String(userId), sessions_ended: ended }, "password changed");
      return create(ChangePasswordResponseSchema, { token: await ctx.sessions.renew(userId, current) });
    },

    async deleteAccount(req, hctx) {
      const userId = requireCaller(hctx);
      const current = requireSession(hctx);
      const row = await store.credentials(userId);
      // Deleted a moment ago (its sessions are ended, a gateway may not know yet).
      if (row === undefined) throw new ConnectError("sign in required", Code.Unauthenticated);
      if (!(await passwords.verify(row.passwordHash, req.password))) throw new ConnectError(DELETE_WRONG_PASSWORD, Code.PermissionDenied);
      // Sessions first, as ChangePassword does: NATS away is Unavailable with
      // nothing changed but sign-outs, and no token outlives the account. A
      // failure after this leaves the account signed out, not deleted: log in
      // and delete again. docs/decisions/0025-account-deletion-by-events.md
      const ended = await ctx.sessions.endAll(userId, current);
      let deleted: UserRow | undefined;
      try {
        deleted = await store.deleteUser(userId, announceUserDeleted(ctx.ids, requestIdOf(hctx)));
      } finally {
        // Also after a failure, which may have come after the COMMIT.
        await ctx.userCache?.invalidate([userId]).catch(() => {});
      }
      if (deleted === undefined) throw new ConnectError("sign in required", Code.Unauthenticated);
      // The handle and the email are free again at once. A claim left behind
      // (a crash here) names a user with no row, so the next sign-up for it
      // takes it over (decision 7).
      await releaseQuietly([claimKey("handle", deleted.handle), claimKey("email", deleted.email)], userId);
      // Someone else may claim the handle from now on: its cached owner goes
      // before this call returns (handle-cache.ts), also when the release
      // failed (the claim is then taken over, and that sign-up clears it
      // again). Unavailable when Redis does not take it, though the account
      // is deleted and the token already refused, so the call cannot be
      // retried: the entry then lasts until the handle's next sign-up clears
      // it or its TTL ends, and resolves to no one meanwhile (no user row).
      await ctx.handleCache?.invalidate([deleted.handle]);
      ctx.log.info({ user_id: String(userId), sessions_ended: ended }, "account deleted");
      return create(DeleteAccountResponseSchema);
    },

    async listSessions(_req, hctx) {
      const userId = requireCaller(hctx);
      const current = requireSession(hctx);
      const rows = await ctx.sessions.list(userId);
      const sessions = rows.map((r) =>
        create(SessionSchema, {
          id: r.id,
          createTime: timestampFromMicros(r.createMicros),
          lastActiveTime: timestampFromMicros(r.lastActiveMicros),
          userAgent: r.userAgent,
          current: r.id === current,
        }),
      );
      return create(ListSessionsResponseSchema, { sessions });
    },

    async revokeSession(req, hctx) {
      const userId = requireCaller(hctx);
      if (!(await ctx.sessions.end(userId, req.sessionId, false))) throw new ConnectError("session not found", Code.NotFound);
      return create(RevokeSessionResponseSchema);
    },

    async getUser(req, hctx) {
      let userId: bigint | undefined;
      let byHandle: ResolvedHandles | undefined;
      if (req.lookup.case === "userId") {
        userId = req.lookup.value;
      } else if (req.lookup.case === "handle") {
        byHandle = await resolveHandles([req.lookup.value]);
        userId = byHandle.ids.get(lowerAscii(req.lookup.value));
      }
      if (userId === undefined) throw new ConnectError("user not found", Code.NotFound);
      // One's own profile carries the email, which the cache does not hold.
      if (callerOf(hctx) !== userId) {
        const [user] = await profiles([userId]);
        if (user === undefined) throw new ConnectError("user not found", Code.NotFound);
        await byHandle?.fill(new Set([userId]));
        return create(GetUserResponseSchema, { user });
      }
      // From the primary: a replica may be up to the lag bound behind, and one's own counts must
      // show one's own last post, delete or follow (read-your-writes); with two replicas read in
      // turn, two reads in a row could even go backwards (threads.test.ts caught it in CI).
      const row = await store.user(userId, "primary");
      if (row === undefined) throw new ConnectError("user not found", Code.NotFound);
      await byHandle?.fill(new Set([userId]));
      return create(GetUserResponseSchema, { user: presentUser(row, { withEmail: true }) });
    },

    async updateProfile(req, hctx) {
      const caller = requireCaller(hctx);
      let row: UserRow | undefined;
      try {
        row = await store.updateProfile(caller, { displayName: req.displayName, bio: req.bio }, announceProfileUpdated(ctx.ids, requestIdOf(hctx)));
      } finally {
        // Also after a failure: the transaction may have committed before it.
        await ctx.userCache?.invalidate([caller]);
      }
      if (row === undefined) throw new ConnectError("user not found", Code.NotFound);
      return create(UpdateProfileResponseSchema, { user: presentUser(row, { withEmail: true }) });
    },

    async batchGetUsers(req) {
      // Handles are ASCII ([A-Za-z0-9_], validated): lower-cased as the store keys them, in request order.
      const handles = req.handles.length === 0 ? undefined : await resolveHandles(req.handles);
      const byHandle = handles === undefined ? [] : req.handles.flatMap((h) => handles.ids.get(lowerAscii(h)) ?? []);
      const users = await profiles([...req.userIds, ...byHandle]);
      await handles?.fill(new Set(users.map((u) => u.id)));
      return create(BatchGetUsersResponseSchema, { users });
    },
  };

  /**
   * The owners of `handles` (lower-cased handle -> user id; a claim may name
   * a user with no row): the handle cache, then the claims it lacks, from
   * the primaries under fill leases (handle-cache.ts says why not a
   * replica); without leases (no cache, Redis away), a replica within the
   * lag bound, then the primary for a handle just signed up. `fill` then
   * caches what was read for the users the call found (`found`), never a
   * claim without its user row: that one may still be released or taken
   * over by a path that does not clear the cache.
   */
  async function resolveHandles(handles: readonly string[]): Promise<ResolvedHandles> {
    const cache = ctx.handleCache;
    if (cache === undefined) return { ids: await store.userIdsByHandles(handles), fill: async () => {} };
    const cached = await cache.read(handles);
    const ids = new Map<string, bigint>();
    const leased = new Map<string, string>();
    const unleased: string[] = [];
    for (const [handle, entry] of cached) {
      if (entry.kind === "hit") ids.set(handle, entry.userId);
      else if (entry.lease === undefined) unleased.push(handle);
      else leased.set(handle, entry.lease);
    }
    const fromPrimary = leased.size === 0 ? new Map<string, bigint>() : await store.userIdsByHandles([...leased.keys()], "primary");
    const fromReader = unleased.length === 0 ? new Map<string, bigint>() : await store.userIdsByHandles(unleased, "reader");
    for (const [handle, userId] of [...fromPrimary, ...fromReader]) ids.set(handle, userId);
    return {
      ids,
      fill: (found) =>
        cache.fill(
          [...leased].flatMap(([handle, lease]) => {
            const userId = fromPrimary.get(handle);
            return userId !== undefined && found.has(userId) ? [{ handle, lease, userId }] : [];
          }),
        ),
    };
  }

  /**
   * Public profiles (no email) of the users that exist among `ids`, in
   * request order, unique: the cache, then one primary read per shard for
   * what it lacks (filling the cache); without a cache, replicas within the
   * lag bound. See lib/user-cache.ts.
   */
  async function profiles(ids: readonly bigint[]): Promise<User[]> {
    const wanted = [...new Set(ids)];
    const cache = ctx.userCache;
    const byId = new Map<bigint, User>();
    if (cache === undefined) {
      for (const row of await store.usersByIds(wanted)) byId.set(row.id, presentUser(row, { withEmail: false }));
    } else {
      const cached = await cache.read(wanted);
      const misses: bigint[] = [];
      for (const id of wanted) {
        const entry = cached.get(id);
        if (entry?.kind === "user") byId.set(id, entry.user);
        else misses.push(id);
      }
      if (misses.length > 0) {
        const fills: Array<{ lease: string; user: User }> = [];
        for (const row of await store.usersByIds(misses, "primary")) {
          const user = presentUser(row, { withEmail: false });
          byId.set(user.id, user);
          const entry = cached.get(user.id);
          if (entry?.kind === "miss" && entry.lease !== undefined) fills.push({ lease: entry.lease, user });
        }
        // Not waited for (a round trip less for the caller, a post's author
        // among them): a fill is best effort, never throws and changes nothing
        // this answer says. Its commands are queued on the Redis connection
        // before this returns, so a later read on that connection comes after it.
        void cache.fill(fills);
      }
    }
    return wanted.flatMap((id) => {
      const user = byId.get(id);
      return user === undefined ? [] : [user];
    });
  }

  /** The claims that do not name `id` (read from the primaries, one by one); a failed read counts as not lost. */
  async function lostClaims(claims: readonly ClaimKey[], id: bigint): Promise<ClaimKey["kind"][]> {
    const lost: ClaimKey["kind"][] = [];
    for (const c of claims) {
      try {
        const current = await store.readClaim(c);
        if (current?.userId !== id) lost.push(c.kind);
      } catch (err) {
        ctx.log.warn({ err, claim: c.kind }, "could not read a sign-up claim back");
      }
    }
    return lost;
  }

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

