import { describe, expect, it } from "vitest";
import { entryMember, memberPrefix, newestFirst, parseMember } from "./entries.js";

describe("timeline entry members", () => {
  it("round-trips a tweet and a repost with its original", () => {
    const tweet = { id: 123148723163893760n, authorId: 42n };
    const repost = { id: 123148723163893761n, authorId: 7n, original: { id: 123148723163893700n, authorId: 42n } };
    expect(entryMember(tweet)).toBe("00123148723163893760:42");
    expect(entryMember(repost)).toBe("00123148723163893761:r123148723163893700-42:7");
    expect(parseMember(entryMember(tweet))).toEqual(tweet);
    expect(parseMember(entryMember(repost))).toEqual(repost);
  });

  it("keeps the author last and the id first, whatever the entry carries", () => {
    const repost = { id: 99n, authorId: 7n, original: { id: 5n, authorId: 42n } };
    expect(entryMember(repost).endsWith(":7")).toBe(true);
    expect(entryMember(repost).startsWith(memberPrefix(99n))).toBe(true);
  });

  it("names no entry for sentinels and malformed members", () => {
    for (const m of ["f00000000000000000000", "", "00000000000000000099:", "00000000000000000099:x", "00000000000000000099:r5:7", "00000000000000000099:r5-:7", "00000000000000000099:r5-6:"]) {
      expect(parseMember(m)).toBeUndefined();
    }
  });

  it("orders newest first, each id once", () => {
    expect(newestFirst([{ id: 1n, authorId: 1n }, { id: 3n, authorId: 1n }, { id: 1n, authorId: 2n }]).map((e) => [e.id, e.authorId])).toEqual([
      [3n, 1n],
      [1n, 1n],
    ]);
  });
});
