import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { thrownCode as code } from "../../lib/testing/in-memory.js";
import { decodePageToken, encodePageToken } from "./page-token.js";

describe("notification page tokens", () => {
  it("round-trip the last id for the inbox and view they were issued for", () => {
    const token = encodePageToken("flat", 42n, 0xffff_ffff_ffff_fff0n);
    expect(token).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(decodePageToken(token, "flat", 42n)).toBe(0xffff_ffff_ffff_fff0n);
  });

  it("are refused in another user's inbox or the other view", () => {
    const token = encodePageToken("grouped", 42n, 7n);
    expect(code(() => decodePageToken(token, "grouped", 43n))).toBe(Code.InvalidArgument);
    expect(code(() => decodePageToken(token, "flat", 42n))).toBe(Code.InvalidArgument);
  });

  it.each([
    ["garbage", "x"],
    ["not base64url", "abc+/def"],
    ["padding", `${encodePageToken("flat", 1n, 7n)}=`],
    ["truncated", encodePageToken("flat", 1n, 7n).slice(0, -2)],
    ["extended", `${encodePageToken("flat", 1n, 7n)}AA`],
    ["another format version", Buffer.from([2, 1, ...Buffer.alloc(16)]).toString("base64url")],
    ["a zero cursor", encodePageToken("flat", 1n, 0n)],
  ])("malformed (%s) is InvalidArgument", (_, token) => {
    expect(code(() => decodePageToken(token, "flat", 1n))).toBe(Code.InvalidArgument);
  });
});
