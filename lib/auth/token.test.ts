import { describe, expect, it } from "vitest";
import { TokenError, createTokenSigner, createTokenVerifier, generateTokenKeys } from "./token.js";

const keys = generateTokenKeys();
const signer = createTokenSigner(keys.privateKey);
const verifier = createTokenVerifier([keys.publicKey]);

function reason(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof TokenError ? err.reason : "other";
  }
}

describe("session tokens", () => {
  it("round-trips the user id until expiry", () => {
    const now = new Date("2026-11-21T12:00:00Z");
    const { token, claims } = signer.sign("1234567890123", 3600, now);
    expect(verifier.verify(token, now).sub).toBe("1234567890123");
    expect(claims.exp - claims.iat).toBe(3600);
    expect(reason(() => verifier.verify(token, new Date(now.getTime() + 3600_000)))).toBe("expired");
  });

  it("rejects a tampered payload or signature", () => {
    const { token } = signer.sign("42", 60);
    const [prefix, payload, sig] = token.split(".") as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, "base64url").toString()), sub: "43" })).toString("base64url");
    expect(reason(() => verifier.verify(`${prefix}.${forged}.${sig}`))).toBe("bad_signature");
    const flipped = sig.slice(0, -2) + (sig.endsWith("AA") ? "BB" : "AA");
    expect(reason(() => verifier.verify(`${prefix}.${payload}.${flipped}`))).toBe("bad_signature");
  });

  it("rejects a token signed by another key", () => {
    const other = createTokenSigner(generateTokenKeys().privateKey);
    expect(reason(() => verifier.verify(other.sign("42", 60).token))).toBe("unknown_key");
  });

  it("accepts the previous key during a rotation", () => {
    const next = generateTokenKeys();
    const both = createTokenVerifier([next.publicKey, keys.publicKey]);
    expect(both.verify(signer.sign("7", 60).token).sub).toBe("7");
    expect(both.verify(createTokenSigner(next.privateKey).sign("8", 60).token).sub).toBe("8");
  });

  it.each(["", "garbage", "chirp1.a.b", "chirp2.x.y", "chirp1..", `chirp1.${"a".repeat(2000)}.b`])(
    "rejects malformed token %j",
    (token) => {
      expect(reason(() => verifier.verify(token))).toBe("malformed");
    },
  );
});
