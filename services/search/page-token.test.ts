import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { thrownCode } from "../../lib/testing/in-memory.js";
import { decodeSearchPageToken, encodeSearchPageToken, queryFingerprint } from "./page-token.js";

const fp = queryFingerprint("a");

const code = thrownCode;

describe("search page tokens", () => {
  it("round-trips the cursor for the same query", () => {
    const token = encodeSearchPageToken(fp, 123456789012345678n);
    expect(token).toMatch(/^[A-Za-z0-9_-]{23}$/);
    expect(decodeSearchPageToken(token, fp)).toBe(123456789012345678n);
    expect(decodeSearchPageToken("", fp)).toBeUndefined();
  });

  it("refuses tokens of another query, malformed and non-canonical ones", () => {
    const token = encodeSearchPageToken(fp, 99n);
    const bad = [
      "x",
      "!!!!",
      `${token}A`,
      token.slice(0, -1),
      `${token}==`,
      encodeSearchPageToken(fp, 0n),
      Buffer.from([2, ...queryFingerprint("a"), 0, 0, 0, 0, 0, 0, 0, 1]).toString("base64url"),
    ];
    for (const t of bad) expect(code(() => decodeSearchPageToken(t, fp)), t).toBe(Code.InvalidArgument);
    expect(code(() => decodeSearchPageToken(token, queryFingerprint("b")))).toBe(Code.InvalidArgument);
  });
});
