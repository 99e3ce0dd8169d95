import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { decodeKeysetToken, encodeKeysetToken } from "./keyset-token.js";

const codeOf = (fn: () => unknown): Code | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return ConnectError.from(err).code;
  }
};

describe("keyset page tokens", () => {
  it("round-trip their fields, signed ones too, in 10 + 8n bytes of base64url, spelt one way only", () => {
    const token = encodeKeysetToken(5, 42n, [1_700_000_000_000_000n, 2n ** 63n + 7n], [true, false]);
    expect(token).toMatch(/^[A-Za-z0-9_-]{35}$/);
    expect(decodeKeysetToken(token, 5, 42n, 2, [true, false])).toEqual([1_700_000_000_000_000n, 2n ** 63n + 7n]);
    // 26 bytes leave 2 spare bits in the last character: setting them is another spelling of the same bytes, refused.
    const last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".indexOf(token.at(-1)!);
    const other = `${token.slice(0, -1)}${"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last | 1]}`;
    expect(Buffer.from(other, "base64url")).toEqual(Buffer.from(token, "base64url"));
    expect(codeOf(() => decodeKeysetToken(other, 5, 42n, 2, [true, false]))).toBe(Code.InvalidArgument);
  });

  it("refuse another list, another owner, another length, a zero field and a stray character, with InvalidArgument", () => {
    const token = encodeKeysetToken(1, 42n, [99n]);
    expect(decodeKeysetToken(token, 1, 42n, 1)).toEqual([99n]);
    for (const bad of [
      () => decodeKeysetToken(token, 2, 42n, 1),
      () => decodeKeysetToken(token, 1, 43n, 1),
      () => decodeKeysetToken(token, 1, 42n, 2),
      () => decodeKeysetToken(encodeKeysetToken(1, 42n, [0n]), 1, 42n, 1),
      () => decodeKeysetToken(`${token}A`, 1, 42n, 1),
      () => decodeKeysetToken("not a token!", 1, 42n, 1),
    ]) {
      expect(codeOf(bad)).toBe(Code.InvalidArgument);
    }
  });
});
