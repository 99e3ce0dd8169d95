import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { thrownCode } from "../../lib/testing/in-memory.js";
import { decodeIdPageToken, decodePageToken, encodeIdPageToken, encodePageToken } from "./page-token.js";

const cursor = { followTimeMicros: 1_780_000_000_123_456n, otherUserId: 0xffff_ffff_ffff_fff0n };

const code = thrownCode;

describe("page tokens", () => {
  it("round-trip the cursor for the list they were issued for", () => {
    const token = encodePageToken("followers", 42n, cursor);
    expect(token).toMatch(/^[A-Za-z0-9_-]{35}$/);
    expect(decodePageToken(token, "followers", 42n)).toEqual(cursor);
  });

  it("are refused on another user's list or the other kind of list", () => {
    const token = encodePageToken("followers", 42n, cursor);
    expect(code(() => decodePageToken(token, "followers", 43n))).toBe(Code.InvalidArgument);
    expect(code(() => decodePageToken(token, "following", 42n))).toBe(Code.InvalidArgument);
  });

  it("ListBlocked's and ListMuted's are their own kinds: never taken by another of the four lists", () => {
    const kinds = ["followers", "following", "blocked", "muted"] as const;
    for (const issued of kinds) {
      const token = encodePageToken(issued, 42n, cursor);
      for (const asked of kinds) {
        if (asked === issued) expect(decodePageToken(token, asked, 42n)).toEqual(cursor);
        else expect(code(() => decodePageToken(token, asked, 42n))).toBe(Code.InvalidArgument);
      }
    }
  });

  it.each([
    ["empty-ish garbage", "x"],
    ["not base64url", "abc+/def"],
    ["padding", `${encodePageToken("following", 1n, cursor)}=`],
    ["truncated", encodePageToken("following", 1n, cursor).slice(0, -2)],
    ["extended", `${encodePageToken("following", 1n, cursor)}AA`],
    ["another format version", Buffer.from([2, 2, ...Buffer.alloc(24)]).toString("base64url")],
    ["a zero cursor", encodePageToken("following", 1n, { followTimeMicros: 0n, otherUserId: 0n })],
  ])("malformed (%s) is InvalidArgument", (_, token) => {
    expect(code(() => decodePageToken(token, "following", 1n))).toBe(Code.InvalidArgument);
  });

  it("a token whose last character carries stray bits is not the one issued", () => {
    const token = encodePageToken("following", 1n, cursor);
    const last = token.at(-1)!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // 26 bytes are 208 bits; 35 characters carry 210, so the last character's low bits are unused: its neighbour decodes to the same bytes.
    const twin = token.slice(0, -1) + alphabet[alphabet.indexOf(last) + 1]!;
    expect(Buffer.from(twin, "base64url")).toEqual(Buffer.from(token, "base64url"));
    expect(code(() => decodePageToken(twin, "following", 1n))).toBe(Code.InvalidArgument);
  });
});

describe("id list page tokens", () => {
  it("round-trip the last id for the list they were issued for", () => {
    const token = encodeIdPageToken("followers", 42n, 0xffff_ffff_ffff_fff0n);
    expect(token).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(decodeIdPageToken(token, "followers", 42n)).toBe(0xffff_ffff_ffff_fff0n);
  });

  it("are refused on another list, on the other kind and on the time-ordered lists", () => {
    const token = encodeIdPageToken("following", 42n, 7n);
    expect(code(() => decodeIdPageToken(token, "following", 43n))).toBe(Code.InvalidArgument);
    expect(code(() => decodeIdPageToken(token, "followers", 42n))).toBe(Code.InvalidArgument);
    expect(code(() => decodePageToken(token, "following", 42n))).toBe(Code.InvalidArgument);
    expect(code(() => decodeIdPageToken(encodePageToken("following", 42n, cursor), "following", 42n))).toBe(Code.InvalidArgument);
    expect(code(() => decodeIdPageToken(encodeIdPageToken("following", 42n, 7n).slice(0, -1), "following", 42n))).toBe(Code.InvalidArgument);
  });
});
