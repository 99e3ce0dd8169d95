// SignUp's bookkeeping around its store calls, with an in-memory store: which
// claims it gives back after which failure, and what it answers. The SQL and
// the protocol end to end are in test/e2e/accounts*.test.ts.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { SignUpRequestSchema } from "../../gen/chirp/user/v1/user_service_pb.js";
import type { UserContext } from "./context.js";
import type { HandleCache } from "./handle-cache.js";
import { SIGN_UP_TOO_SLOW, SIGN_UP_UNAVAILABLE, routes } from "./routes.js";
import { UserNotWrittenError, type Claim, type ClaimKey, type NewUser, type UserRow, type UserStore } from "./store.js";

const USER_ID = 77n;

/** Claims in a map, the user row in a variable; `createUser` runs `write` (default: commits at once), then "commits". */
function fakeStore(opts: {
  claims?: Map<string, Claim>;
  write?: (user: NewUser, beforeCommit: () => void) => Promise<void>;
  afterCommit?: (claims: Map<string, Claim>) => void;
}) {
  const claims = opts.claims ?? new Map<string, Claim>();
  const calls: string[] = [];
  const k = (c: ClaimKey): string => `${c.kind}:${c.key}`;
  let written: NewUser | undefined;
  const store: Partial<UserStore> = {
    async claim(c, userId) {
      calls.push(`claim ${k(c)}`);
      const existing = claims.get(k(c));
      if (existing !== undefined) return existing;
      claims.set(k(c), { userId, ageMs: 0 });
      return "claimed";
    },
    async takeOver() {
      return false;
    },
    async release(c, userId) {
      calls.push(`release ${k(c)}`);
      if (claims.get(k(c))?.userId === userId) claims.delete(k(c));
    },
    async readClaim(c) {
      return claims.get(k(c));
    },
    async createUser(user, beforeCommit) {
      calls.push("createUser");
      // As the real store: a failure before the COMMIT is a UserNotWrittenError.
      try {
        await (opts.write ?? (async (_u, before) => before()))(user, beforeCommit);
      } catch (err) {
        throw new UserNotWrittenError(err);
      }
      written = user;
      opts.afterCommit?.(claims);
      return row(user);
    },
  };
  return { store: store as UserStore, claims, calls, written: () => written };
}

function row(u: NewUser): UserRow {
  return {
    id: u.id,
    handle: u.handle,
    displayName: u.displayName,
    bio: "",
    email: u.email,
    createTime: new Date(),
    followerCount: 0,
    followingCount: 0,
    tweetCount: 0,
  };
}

function signUpWith(store: UserStore, windowMs = 5000, handleCache?: Pick<HandleCache, "invalidate">) {
  const ctx = {
    store,
    handleCache,
    passwords: { hash: async () => "$argon2id$fake" },
    sessions: { begin: async () => "chirp1.fake" },
    users: { tokenTtlSeconds: 60, claimGraceMs: 30_000, signUpCommitWindowMs: windowMs },
    ids: { next: () => USER_ID, at: () => USER_ID },
    log: pino({ level: "silent" }),
  } as unknown as UserContext;
  const handler = routes(ctx).signUp!;
  const req = create(SignUpRequestSchema, { handle: "Alice", email: "Alice@Example.com", password: "correct horse", displayName: "A" });
  const hctx = { requestHeader: new Headers() } as unknown as HandlerContext;
  return async () => {
    try {
      return await handler(req, hctx);
    } catch (err) {
      return ConnectError.from(err);
    }
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("SignUp (in memory)", () => {
  it("claims the lower-cased handle, then the email, then writes the user, and keeps both claims", async () => {
    const f = fakeStore({});
    const res = await signUpWith(f.store)();
    expect(res).not.toBeInstanceOf(ConnectError);
    expect(f.calls).toEqual(["claim handle:alice", "claim email:alice@example.com", "createUser"]);
    expect([...f.claims.keys()]).toEqual(["handle:alice", "email:alice@example.com"]);
  });

  it("refuses to commit once its lease is over: Unavailable, nothing written, both claims given back", async () => {
    const f = fakeStore({
      write: async (_u, beforeCommit) => {
        await sleep(30);
        beforeCommit();
      },
    });
    const res = await signUpWith(f.store, 10)();
    expect(res).toBeInstanceOf(ConnectError);
    expect((res as ConnectError).code).toBe(Code.Unavailable);
    expect((res as ConnectError).rawMessage).toBe(SIGN_UP_TOO_SLOW);
    expect(f.written()).toBeUndefined();
    expect(f.claims.size).toBe(0);
  });

  it("does not even start the user's transaction when the lease ran out during the claims", async () => {
    const f = fakeStore({});
    const slowClaim = f.store.claim.bind(f.store);
    f.store.claim = async (c, id) => {
      await sleep(30);
      return slowClaim(c, id);
    };
    const res = await signUpWith(f.store, 10)();
    expect((res as ConnectError).code).toBe(Code.Unavailable);
    expect(f.calls).not.toContain("createUser");
    expect(f.claims.size).toBe(0);
  });

  it("gives the claims back when the user's transaction failed before its COMMIT (no connection, say)", async () => {
    const f = fakeStore({});
    f.store.createUser = async () => {
      throw new UserNotWrittenError(new ConnectError("shard -40 unavailable", Code.Unavailable));
    };
    const res = await signUpWith(f.store)();
    expect((res as ConnectError).code).toBe(Code.Unavailable);
    expect((res as ConnectError).rawMessage).toBe("shard -40 unavailable");
    expect(f.claims.size).toBe(0);
  });

  it("keeps the claims when the COMMIT's outcome is unknown (the row may exist)", async () => {
    const f = fakeStore({});
    f.store.createUser = async () => {
      throw new ConnectError("shard -40 unavailable", Code.Unavailable);
    };
    const res = await signUpWith(f.store)();
    expect((res as ConnectError).code).toBe(Code.Unavailable);
    expect(f.claims.size).toBe(2);
  });

  it("gives the handle back when the email is taken, and leaves the other user's email claim alone", async () => {
    const claims = new Map<string, Claim>([["email:alice@example.com", { userId: 5n, ageMs: 10 }]]);
    const f = fakeStore({ claims });
    const res = await signUpWith(f.store)();
    expect((res as ConnectError).code).toBe(Code.AlreadyExists);
    expect((res as ConnectError).rawMessage).toBe("email already registered");
    expect([...claims.entries()]).toEqual([["email:alice@example.com", { userId: 5n, ageMs: 10 }]]);
    expect(f.calls).toEqual(["claim handle:alice", "claim email:alice@example.com", "release handle:alice"]);
  });

  it("clears the handle's cached owner once it holds the claims, before it writes the user", async () => {
    const f = fakeStore({});
    const res = await signUpWith(f.store, 5000, {
      invalidate: async (handles) => {
        f.calls.push(`clear cached owner of ${handles.join(",")}`);
      },
    })();
    expect(res).not.toBeInstanceOf(ConnectError);
    expect(f.calls).toEqual(["claim handle:alice", "claim email:alice@example.com", "clear cached owner of Alice", "createUser"]);
  });

  it("answers Unavailable and gives both claims back when the handle's cached owner cannot be cleared (Redis away)", async () => {
    const f = fakeStore({});
    const res = await signUpWith(f.store, 5000, {
      invalidate: async () => {
        throw new ConnectError("change saved, but not yet visible everywhere; retry", Code.Unavailable);
      },
    })();
    expect((res as ConnectError).code).toBe(Code.Unavailable);
    expect((res as ConnectError).rawMessage).toBe(SIGN_UP_UNAVAILABLE);
    expect(f.calls).not.toContain("createUser");
    expect(f.claims.size).toBe(0);
  });

  it("answers Internal when a claim names someone else after the commit (the lease's assumptions broke)", async () => {
    const f = fakeStore({ afterCommit: (claims) => claims.set("handle:alice", { userId: 9n, ageMs: 0 }) });
    const res = await signUpWith(f.store)();
    expect((res as ConnectError).code).toBe(Code.Internal);
  });
});
