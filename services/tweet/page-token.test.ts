import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { decodeLikesPageToken, decodeRepliesPageToken, encodeLikesPageToken, encodeRepliesPageToken } from "./page-token.js";

const codeOf = (fn: () => unknown): Code | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return ConnectError.from(err).code;
  }
};

describe("ListLikedTweets page tokens", () => {
  const cursor = { likeTimeMicros: 1_780_000_000_123_456n, tweetId: 123_456_789_012_345n };

  it("round-trip for the list they were issued for", () => {
    const token = encodeLikesPageToken(42n, cursor);
    expect(token).toMatch(/^[A-Za-z0-9_-]{34}$/);
    expect(decodeLikesPageToken(token, 42n)).toEqual(cursor);
  });

  it("refuse another user's token, bad characters, wrong length, a non-canonical spelling and zero fields", () => {
    const token = encodeLikesPageToken(42n, cursor);
    expect(codeOf(() => decodeLikesPageToken(token, 43n))).toBe(Code.InvalidArgument);
    expect(codeOf(() => decodeLikesPageToken(`${token}!`, 42n))).toBe(Code.InvalidArgument);
    expect(codeOf(() => decodeLikesPageToken(`${token}AA`, 42n))).toBe(Code.InvalidArgument);
    expect(codeOf(() => decodeLikesPageToken(token.slice(0, -1), 42n))).toBe(Code.InvalidArgument);
    // 25 bytes fill 34 characters with 4 bits to spare: set one of those spare bits.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const spare = alphabet[alphabet.indexOf(token.at(-1)!) ^ 1]!;
    expect(Buffer.from(token.slice(0, -1) + spare, "base64url")).toEqual(Buffer.from(token, "base64url"));
    expect(codeOf(() => decodeLikesPageToken(token.slice(0, -1) + spare, 42n))).toBe(Code.InvalidArgument);
    expect(codeOf(() => decodeLikesPageToken(encodeLikesPageToken(42n, { likeTimeMicros: 0n, tweetId: 1n }), 42n))).toBe(Code.InvalidArgument);
    expect(codeOf(() => decodeLikesPageToken(encodeLikesPageToken(42n, { likeTimeMicros: 1n, tweetId: 0n }), 42n))).toBe(Code.InvalidArgument);
    expect(codeOf(() => decodeLikesPageToken("", 42n))).toBe(Code.InvalidArgument);
  });
});

describe("replies page tokens", () => {
  it("round-trip the last reply id for the thread they were issued for", () => {
    const token = encodeRepliesPageToken(7n, 0xffff_ffff_ffff_fff0n);
    expect(token).toMatch(/^[A-Za-z0-9_-]{23}$/);
    expect(decodeRepliesPageToken(token, 7n)).toBe(0xffff_ffff_ffff_fff0n);
  });

  it("refuse another thread's token, a likes token, bad characters and a zero reply id", () => {
    const token = encodeRepliesPageToken(7n, 99n);
    expect(codeOf(() => decodeRepliesPageToken(token, 8n))).toBe(Code.InvalidArgument);
    expect(codeOf(() => decodeRepliesPageToken(encodeLikesPageToken(7n, { likeTimeMicros: 1n, tweetId: 99n }), 7n))).toBe(Code.InvalidArgument);
    expect(codeOf(() => decodeRepliesPageToken(`${token}!`, 7n))).toBe(Code.InvalidArgument);
    expect(codeOf(() => decodeRepliesPageToken(encodeRepliesPageToken(7n, 0n), 7n))).toBe(Code.InvalidArgument);
  });
});
