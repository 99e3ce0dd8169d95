import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRedis, type TestRedis } from "../../test/support/redis.js";
import { entryMember, padId, type Entry } from "./entries.js";
import { createTimelineLists, KEYS, parsePage, type TimelineLists } from "./lists.js";

const m = (id: bigint, author = 7n): string => entryMember({ id, authorId: author });

describe("a list page as the read script returns it", () => {
  it("tells a missing list and one being built from a built one", () => {
    expect(parsePage([], undefined, 10)).toEqual({ state: "missing" });
    expect(parsePage(["b", ""], undefined, 10)).toEqual({ state: "building" });
    expect(parsePage([`f${padId(0n)}`, ""], undefined, 10)).toEqual({ state: "built", entries: [], floor: 0n });
  });

  it("is complete down to the higher of the sentinel's floor and the list's lowest entry", () => {
    const lowest = m(100n);
    expect(parsePage([`f${padId(0n)}`, lowest, m(300n), m(200n), lowest], undefined, 10)).toMatchObject({ floor: 100n });
    expect(parsePage([`f${padId(150n)}`, lowest, m(300n), m(200n)], undefined, 10)).toMatchObject({ floor: 150n });
  });

  it("a full page stops at its last entry; entries at or above the bound are dropped", () => {
    const page = parsePage([`f${padId(0n)}`, m(10n), m(300n), m(250n), m(200n)], 260n, 3);
    expect(page).toEqual({ state: "built", entries: [{ id: 250n, authorId: 7n }, { id: 200n, authorId: 7n }], floor: 200n });
  });
});

// Fan-out's batched scripts against a real redis-server of this file's own:
// one call writes many lists, each exactly as if it were written alone.
describe("fan-out's batch scripts", () => {
  let r: TestRedis;
  let lists: TimelineLists;
  let nextUser = 100n;
  beforeAll(async () => {
    r = await startTestRedis();
    lists = createTimelineLists(r.redis);
  });
  afterAll(async () => {
    await r?.stop();
  });

  /** A snowflake id of millisecond `k` past a fixed time (plus a sequence, for ids sharing a millisecond). */
  const tweet = (k: number, authorId = 7n, seq = 0n): Entry => ({ id: (BigInt(1_700_000_000_000 + k) << 22n) | seq, authorId });
  const TTL = 60_000;
  const built = async (entries: Entry[], cap: number): Promise<string> => {
    const key = KEYS.home(++nextUser);
    expect(await lists.beginBuild(key)).toBe(true);
    expect(await lists.finishBuild(key, entries, 0n, cap, TTL)).toBe(true);
    return key;
  };
  const members = (key: string): Promise<string[]> => r.redis.zrange(key, "0", "-1");

  it("adds to the lists that exist, counts them, and creates none of the missing ones", async () => {
    const a = await built([tweet(1)], 10);
    const b = await built([], 10);
    // A list being built takes fan-out too: its build reads MySQL meanwhile.
    const building = KEYS.home(++nextUser);
    await lists.beginBuild(building);
    const missing = [KEYS.home(++nextUser), KEYS.home(++nextUser)];
    const e = tweet(5, 9n);
    expect(await lists.addToEach([missing[0]!, a, building, missing[1]!, b], e, 10)).toBe(3);
    expect(await members(a)).toEqual([`g${padId(0n)}`, entryMember(tweet(1)), entryMember(e)]);
    expect(await members(b)).toEqual([`g${padId(0n)}`, entryMember(e)]);
    expect(await members(building)).toEqual(["b", entryMember(e)]);
    expect(await r.redis.exists(...missing)).toBe(0);
    // A batch of missing lists only.
    expect(await lists.addToEach(missing, e, 10)).toBe(0);
    expect(await r.redis.exists(...missing)).toBe(0);
  });

  it("trims each list to the cap and raises each one's floor to its own lowest kept entry", async () => {
    const full1 = await built([tweet(1), tweet(2), tweet(3)], 3);
    const full2 = await built([tweet(10), tweet(20), tweet(30)], 3);
    const roomy = await built([tweet(1)], 3);
    expect(await lists.addToEach([full1, full2, roomy], tweet(40), 3)).toBe(3);
    expect(await lists.readPage(full1, undefined, 10, 0)).toEqual({ state: "built", entries: [tweet(40), tweet(3), tweet(2)], floor: tweet(2).id });
    expect(await lists.readPage(full2, undefined, 10, 0)).toEqual({ state: "built", entries: [tweet(40), tweet(30), tweet(20)], floor: tweet(20).id });
    // Under the cap nothing is dropped: the list still holds everything.
    expect(await lists.readPage(roomy, undefined, 10, 0)).toEqual({ state: "built", entries: [tweet(40), tweet(1)], floor: 0n });
    expect(await r.redis.zcard(full1)).toBe(4);
  });

  it("removes an id's member from each list, whatever it carries, and leaves others of the same millisecond", async () => {
    const gone = tweet(5, 7n, 1n);
    const sameMs = tweet(5, 8n, 2n);
    const repost: Entry = { ...gone, original: { id: tweet(1).id, authorId: 3n } };
    const plainList = await built([tweet(1), gone, sameMs], 10);
    const repostList = await built([repost, sameMs], 10);
    const missing = KEYS.home(++nextUser);
    // The remover knows the id and author only, not the original the repost's member carries.
    await lists.removeFromEach([plainList, missing, repostList], { id: gone.id, authorId: gone.authorId });
    expect(await members(plainList)).toEqual([`g${padId(0n)}`, entryMember(tweet(1)), entryMember(sameMs)]);
    expect(await members(repostList)).toEqual([`g${padId(0n)}`, entryMember(sameMs)]);
    expect(await r.redis.exists(missing)).toBe(0);
  });
});
