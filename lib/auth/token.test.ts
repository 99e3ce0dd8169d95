import { describe, expect, it } from "vitest";
import { createPrivateKey, sign } from "node:crypto";
import { refusingEndedSessions } from "./ended-sessions.js";
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

  it("names its session: the one given, else a random one; a token without a session is malformed", () => {
    expect(verifier.verify(signer.sign("42", 60, new Date(), "987654321").token).sid).toBe("987654321");
    const a = verifier.verify(signer.sign("42", 60).token).sid;
    const b = verifier.verify(signer.sign("42", 60).token).sid;
    expect(a).toMatch(/^[1-9][0-9]*$/);
    expect(a).not.toBe(b);
    // Signed properly, but without `sid` (a token from before sessions): refused.
    const body = `chirp1.${Buffer.from(JSON.stringify({ sub: "42", iat: 1, exp: 4_000_000_000, kid: signer.kid })).toString("base64url")}`;
    const legacy = `${body}.${sign(null, Buffer.from(body), createPrivateKey(keys.privateKey)).toString("base64url")}`;
    expect(reason(() => verifier.verify(legacy))).toBe("malformed");
  });

  it("refuses the tokens of ended sessions when asked to (refusingEndedSessions)", () => {
    const ended = new Set(["77"]);
    const checking = refusingEndedSessions(verifier, { has: (sid) => ended.has(sid) });
    const live = signer.sign("42", 60, new Date(), "76").token;
    const gone = signer.sign("42", 60, new Date(), "77").token;
    expect(checking.verify(live).sub).toBe("42");
    expect(reason(() => checking.verify(gone))).toBe("session_ended");
    ended.delete("77");
    expect(checking.verify(gone).sid).toBe("77");
  });
});
