import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { thrownCode } from "../../lib/testing/in-memory.js";
import { decodeTimelineToken, encodeTimelineToken } from "./page-token.js";

const code = thrownCode;

describe("timeline page tokens", () => {
  it("round-trip the bound for the timeline they were issued for", () => {
    const token = encodeTimelineToken("home", 42n, 0x7fff_ffff_ffff_fff0n);
    expect(token).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(decodeTimelineToken(token, "home", 42n)).toBe(0x7fff_ffff_ffff_fff0n);
    expect(decodeTimelineToken("", "home", 42n)).toBeUndefined();
  });

  it("are refused for another user's timeline or the other kind", () => {
    const token = encodeTimelineToken("user", 42n, 7n);
    expect(code(() => decodeTimelineToken(token, "user", 43n))).toBe(Code.InvalidArgument);
    expect(code(() => decodeTimelineToken(token, "home", 42n))).toBe(Code.InvalidArgument);
  });

  it.each([
    ["garbage", "x"],
    ["not base64url", "abc+/def"],
    ["truncated", encodeTimelineToken("home", 1n, 9n).slice(0, -2)],
    ["extended", `${encodeTimelineToken("home", 1n, 9n)}AA`],
    ["another version", Buffer.from([2, 1, ...Buffer.alloc(16)]).toString("base64url")],
    ["a zero bound", encodeTimelineToken("home", 1n, 0n)],
  ])("malformed (%s) is InvalidArgument", (_, token) => {
    expect(code(() => decodeTimelineToken(token, "home", 1n))).toBe(Code.InvalidArgument);
  });
});
