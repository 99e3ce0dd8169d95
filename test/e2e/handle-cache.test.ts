// A handle freed by DeleteAccount and signed up again by someone else
// resolves to its new owner at once, through the handle -> user id cache
// (services/user/handle-cache.ts): in a tweet's mentions (PostTweet asks
// BatchGetUsers) and in GetUser by handle. The system as `npm start` runs it
// on a tenant of the shared cluster; the cache is looked at in the tenant's
// Redis database, to be sure it held the old owner when the account went.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type TestSystem } from "../support/system.js";
import { TEST_PASSWORD, gatewayApi, type Account } from "./support/api.js";

let system: TestSystem;
let redis: Redis;

beforeAll(async () => {
  system = await startSystem();
  redis = new Redis(system.infra.redisUrl, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  redis?.disconnect();
  await system?.stop();
});

const U = "chirp.user.v1.UserService";
const T = "chirp.tweet.v1.TweetService";
const { call, ok, signUp } = gatewayApi(() => system.mesh.gatewayUrl, "hc");

let made = 0;
/** A sign-up with the given handle (and a fresh email each time, apart from signUp()'s `hc<pid % 10000>_<n>@`). */
async function signUpAs(handle: string): Promise<Account> {
  const email = `hc_as${process.pid}_${made++}@example.com`;
  const { user, token } = await ok<{ user: { id: string }; token: string }>(`${U}/SignUp`, { handle, displayName: handle, email, password: TEST_PASSWORD });
  return { id: BigInt(user.id), handle, token };
}

/** Whom `@handle` in a new tweet of `by` names. */
async function mentioned(by: Account, handle: string): Promise<string[]> {
  const { tweet } = await ok<{ tweet: { mentions?: string[] } }>(`${T}/PostTweet`, { text: `hello @${handle}` }, by.token);
  return tweet.mentions ?? [];
}

async function userByHandle(handle: string): Promise<string | undefined> {
  const answer = await call<{ user?: { id: string } }>(`${U}/GetUser`, { handle });
  return answer.status === 200 ? answer.body.user?.id : `error ${answer.code}`;
}

const cacheKey = (handle: string): string => `chirp:handle:{${handle.toLowerCase()}}`;

describe("a freed handle signed up again", () => {
  it("resolves to its new owner at once, in mentions and GetUser, though the old owner was cached", async () => {
    const poster = await signUp();
    const handle = `Hc${process.pid % 10_000}_gone`;
    const old = await signUpAs(handle);
    expect(await mentioned(poster, handle.toLowerCase())).toEqual([String(old.id)]);
    expect(await userByHandle(handle)).toBe(String(old.id));
    // The old owner is cached: the question below is not answered by an empty cache.
    expect(await redis.get(cacheKey(handle))).toBe(String(old.id));

    await ok(`${U}/DeleteAccount`, { password: TEST_PASSWORD }, old.token);
    // DeleteAccount cleared it before it returned.
    expect(await redis.exists(cacheKey(handle))).toBe(0);
    expect(await userByHandle(handle)).toBe("error not_found");
    expect(await mentioned(poster, handle)).toEqual([]);

    const next = await signUpAs(handle.toUpperCase());
    expect(next.id).not.toBe(old.id);
    expect(await userByHandle(handle)).toBe(String(next.id));
    expect(await mentioned(poster, handle)).toEqual([String(next.id)]);
    // ...and from the cache again, now holding the new owner.
    expect(await redis.get(cacheKey(handle))).toBe(String(next.id));
    expect(await mentioned(poster, handle.toLowerCase())).toEqual([String(next.id)]);
  });

  it("resolves to its new owner at once even when the deletion's clear was lost (a crash after the release): the sign-up clears it", async () => {
    const poster = await signUp();
    const handle = `Hc${process.pid % 10_000}_lost`;
    const old = await signUpAs(handle);
    expect(await mentioned(poster, handle)).toEqual([String(old.id)]);
    expect(await redis.get(cacheKey(handle))).toBe(String(old.id));
    await ok(`${U}/DeleteAccount`, { password: TEST_PASSWORD }, old.token);
    // As if DeleteAccount had died between releasing the claim and clearing the cache: the old owner is still there.
    await redis.set(cacheKey(handle), String(old.id), "PX", 600_000);

    const next = await signUpAs(handle);
    expect(await userByHandle(handle)).toBe(String(next.id));
    expect(await mentioned(poster, handle)).toEqual([String(next.id)]);
  });
});
