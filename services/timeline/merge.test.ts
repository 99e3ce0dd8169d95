import { describe, expect, it } from "vitest";
import type { Entry } from "./entries.js";
import { mergeAuthors } from "./merge.js";
import { NO_CURSOR, type AuthorWalk, type AuthorTweets } from "./author-tweets.js";

/** An in-memory authorTweets: each author's tweet ids; counts the rows it hands out. */
function fakeStore(tweets: Map<bigint, bigint[]>): AuthorTweets & { rowsRead: number } {
  const fake = {
    rowsRead: 0,
    async entries(authorId: bigint, before: bigint, limit: number): Promise<Entry[]> {
      return (tweets.get(authorId) ?? [])
        .filter((id) => id < before)
        .sort((a, b) => (a < b ? 1 : -1))
        .slice(0, limit)
        .map((id) => ({ id, authorId }));
    },
    async walkAuthors(walks: readonly AuthorWalk[]) {
      const out: Entry[] = [];
      for (const w of walks) out.push(...(await fake.entries(w.authorId, w.before, w.limit)));
      fake.rowsRead += out.length;
      return out;
    },
  };
  return fake;
}

/** Deterministic pseudo-random numbers. */
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

function world(seed: number, authors: number, posts: (i: number) => number): Map<bigint, bigint[]> {
  const r = rng(seed);
  const used = new Set<bigint>();
  const tweets = new Map<bigint, bigint[]>();
  for (let a = 1; a <= authors; a++) {
    const ids: bigint[] = [];
    for (let i = 0; i < posts(a); i++) {
      let id: bigint;
      do id = BigInt(Math.floor(r() * 1e9) + 1);
      while (used.has(id));
      used.add(id);
      ids.push(id);
    }
    tweets.set(BigInt(a), ids);
  }
  return tweets;
}

function truth(tweets: Map<bigint, bigint[]>, before: bigint): bigint[] {
  return [...tweets.values()]
    .flat()
    .filter((id) => id < before)
    .sort((a, b) => (a < b ? 1 : -1));
}

describe("mergeAuthors", () => {
  it.each([
    ["even authors", 50, () => 40],
    ["one author posts almost everything", 30, (a: number) => (a === 1 ? 3000 : 3)],
    ["many quiet authors", 2000, (a: number) => a % 3],
    ["a single author", 1, () => 500],
  ])("is exact down to its floor and reads near what it returns (%s)", async (_, authors, posts) => {
    const tweets = world(authors, authors, posts);
    const authorTweets = fakeStore(tweets);
    for (const [before, want] of [
      [NO_CURSOR, 800],
      [NO_CURSOR, 21],
      [500_000_000n, 21],
    ] as const) {
      authorTweets.rowsRead = 0;
      const result = await mergeAuthors(authorTweets, { authors: tweets.keys(), before, want, primary: false });
      const expected = truth(tweets, before).filter((id) => id >= result.floor);
      expect(result.entries.map((e) => e.id)).toEqual(expected.slice(0, want));
      if (result.floor === 0n) expect(result.entries.length).toBe(Math.min(want, truth(tweets, before).length));
      // Bounded work: about twice the wanted rows plus one short walk per author, per round.
      expect(authorTweets.rowsRead).toBeLessThanOrEqual(3 * (4 * want + 2 * authors));
    }
  });

  it("pages through everything, disjoint and complete", async () => {
    const tweets = world(7, 40, (a) => (a * 7) % 60);
    const authorTweets = fakeStore(tweets);
    const seen: bigint[] = [];
    let before = NO_CURSOR;
    for (let pages = 0; pages < 1000; pages++) {
      const { entries, floor } = await mergeAuthors(authorTweets, { authors: tweets.keys(), before, want: 21, primary: false });
      const page = entries.slice(0, 20);
      seen.push(...page.map((e) => e.id));
      const next = entries.length > 20 ? page.at(-1)!.id : floor;
      if (next === 0n) break;
      before = next;
    }
    expect(seen).toEqual(truth(tweets, NO_CURSOR));
  });
});
