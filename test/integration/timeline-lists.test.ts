// Timeline lists against a real redis-server: what a list says it holds
// (its floor) after the scripts that trim it, remove from it and merge into
// it. A page may skip MySQL only when the list really holds everything down
// to its floor.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { entryMember, padId, type Entry } from "../../services/timeline/entries.js";
import { KEYS, createTimelineLists, type ListPage, type TimelineLists } from "../../services/timeline/lists.js";
import { startTestRedis, type TestRedis } from "../support/redis.js";
import { RELATION_KEYS, relationMembers } from "../../lib/relations.js";

let server: TestRedis;
let redis: Redis;
let lists: TimelineLists;
let nextUser = 500n;

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.redis;
  lists = createTimelineLists(redis);
});

afterAll(async () => {
  await server?.stop();
});

const A = 11n;
const B = 12n;
/** A snowflake id of millisecond `k` past a fixed epoch time: entries are scored by their millisecond. */
const tweet = (k: number, authorId: bigint): Entry => ({ id: BigInt(1_700_000_000_000 + k) << 22n, authorId });
const TTL = 60_000;

async function read(key: string): Promise<Extract<ListPage, { state: "built" }>> {
  const page = await lists.readPage(key, undefined, 100, 0);
  if (page.state !== "built") throw new Error(`list ${key} is ${page.state}`);
  return page;
}

describe("a timeline list's floor", () => {
  it("is 0 for a list that holds every entry (nothing below it to read from MySQL)", async () => {
    const user = ++nextUser;
    const key = KEYS.home(user);
    expect(await lists.beginBuild(key)).toBe(true);
    await lists.finishBuild(key, [tweet(1, A), tweet(2, B)], 0n, 10, TTL);
    expect(await read(key)).toEqual({ state: "built", entries: [tweet(2, B), tweet(1, A)], floor: 0n });
  });

  it("rises to the lowest kept entry when an add trims the list, so a later removal cannot make it look complete", async () => {
    const user = ++nextUser;
    const key = KEYS.home(user);
    await lists.beginBuild(key);
    await lists.finishBuild(key, [tweet(1, A), tweet(2, B), tweet(3, B)], 0n, 3, TTL);
    // A new tweet pushes A's out of the list (cap 3).
    expect(await lists.addToEach([key], tweet(4, B), 3)).toBe(1);
    expect((await read(key)).floor).toBe(tweet(2, B).id);
    // Unfollowing B empties the list: A's tweet is still below the floor, in MySQL only.
    expect(await lists.removeAuthor(user, B, 1n, TTL)).toBe(3);
    expect(await read(key)).toEqual({ state: "built", entries: [], floor: tweet(2, B).id });
  });

  it("rises when a build or a merge stores more than the cap", async () => {
    const user = ++nextUser;
    const key = KEYS.home(user);
    await lists.beginBuild(key);
    await lists.finishBuild(key, [tweet(1, A), tweet(2, A), tweet(3, A)], 0n, 2, TTL);
    expect((await read(key)).floor).toBe(tweet(2, A).id);
    expect(await lists.mergeAuthor(user, B, 1n, [tweet(4, B), tweet(5, B)], undefined, 2, TTL)).toBe(1);
    expect(await read(key)).toEqual({ state: "built", entries: [tweet(5, B), tweet(4, B)], floor: tweet(4, B).id });
  });

  it("reads a list written before floors rose on trims conservatively: down to its lowest entry", async () => {
    const key = KEYS.recent(++nextUser);
    const [low, high] = [tweet(1, A), tweet(2, A)];
    await redis.zadd(key, 0, `f${padId(0n)}`, Number(low.id >> 22n), entryMember(low), Number(high.id >> 22n), entryMember(high));
    expect(await read(key)).toEqual({ state: "built", entries: [high, low], floor: low.id });
    // Still built for every script: adds land in it.
    expect(await lists.addToEach([key], tweet(3, A), 10)).toBe(1);
    expect(await lists.beginBuild(key)).toBe(false);
  });
});

describe("a home read's one round trip (readHome)", () => {
  const C = 13n;
  const HOT = 14n;

  it("without a cached following set: the page alone, so the caller builds the set first", async () => {
    const user = ++nextUser;
    await lists.beginBuild(KEYS.home(user));
    await lists.finishBuild(KEYS.home(user), [tweet(1, A)], 0n, 10, TTL);
    const read = await lists.readHome(user, undefined, 10, TTL);
    expect(read.page).toEqual({ state: "built", entries: [tweet(1, A)], floor: 0n });
    expect(read.following).toBeUndefined();
  });

  it("gives the page, its authors still followed, and each hot followee's recent page; renews the list's TTL only", async () => {
    const user = ++nextUser;
    const home = KEYS.home(user);
    await lists.beginBuild(home);
    // The caller's own tweet, a followee's, and one of C's (unfollowed since: its removal raced a fan-out).
    await lists.finishBuild(home, [tweet(1, user), tweet(2, A), tweet(3, C), tweet(4, A)], 0n, 10, 1_000);
    await redis.sadd(KEYS.following(user), "*", String(A), String(HOT));
    await redis.sadd(KEYS.hot, String(HOT), String(user));
    await lists.beginBuild(KEYS.recent(HOT));
    await lists.finishBuild(KEYS.recent(HOT), [tweet(5, HOT), tweet(6, HOT)], tweet(5, HOT).id, 10, 1_000);

    const read = await lists.readHome(user, undefined, 10, TTL);
    expect(read.page).toEqual({ state: "built", entries: [tweet(4, A), tweet(3, C), tweet(2, A), tweet(1, user)], floor: 0n });
    expect(read.following?.followed).toEqual(new Set([A]));
    // The caller is hot too, but is not their own hot followee.
    expect(read.following?.hot).toEqual([{ authorId: HOT, page: { state: "built", entries: [tweet(6, HOT), tweet(5, HOT)], floor: tweet(5, HOT).id } }]);
    expect(await redis.pttl(home)).toBeGreaterThan(1_000);
    expect(await redis.pttl(KEYS.recent(HOT))).toBeLessThanOrEqual(1_000);
  });

  it("reads the caller's blocks and mutes in the same script: undefined until their set is built", async () => {
    const user = ++nextUser;
    await lists.beginBuild(KEYS.home(user));
    await lists.finishBuild(KEYS.home(user), [tweet(1, A)], 0n, 10, TTL);
    await redis.sadd(KEYS.following(user), "*", String(A));
    expect((await lists.readHome(user, undefined, 10, TTL)).relations).toBeUndefined();
    await redis.sadd(RELATION_KEYS.set(user), ...relationMembers([C], [A]));
    const read = await lists.readHome(user, undefined, 10, TTL);
    expect(read.relations).toEqual({ blocks: new Set([C]), mutes: new Set([A]) });
    // Without a cached following set too.
    await redis.del(KEYS.following(user));
    expect((await lists.readHome(user, undefined, 10, TTL)).relations).toEqual({ blocks: new Set([C]), mutes: new Set([A]) });
  });

  it("pages every list below the bound, and reports a hot followee whose list is missing", async () => {
    const user = ++nextUser;
    const home = KEYS.home(user);
    await lists.beginBuild(home);
    await lists.finishBuild(home, [tweet(1, A), tweet(3, A)], 0n, 10, TTL);
    await redis.sadd(KEYS.following(user), "*", String(A), String(HOT), String(C));
    await redis.sadd(KEYS.hot, String(HOT), String(C));
    await redis.del(KEYS.recent(C));
    await lists.beginBuild(KEYS.recent(HOT));
    await lists.finishBuild(KEYS.recent(HOT), [tweet(2, HOT), tweet(4, HOT)], 0n, 10, TTL);

    const read = await lists.readHome(user, tweet(3, A).id, 10, TTL);
    expect(read.page).toMatchObject({ entries: [tweet(1, A)] });
    const hot = new Map(read.following?.hot.map((h) => [h.authorId, h.page]));
    expect(hot.get(HOT)).toEqual({ state: "built", entries: [tweet(2, HOT)], floor: 0n });
    expect(hot.get(C)).toEqual({ state: "missing" });
  });
});
