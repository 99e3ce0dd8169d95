import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { LruMap } from "../lru.js";

/**
 * Session tokens: `chirp1.<payload>.<signature>`, base64url, signed with
 * Ed25519. The user service holds the private key and mints tokens at log-in;
 * the gateway holds only public keys, so it can verify a token but never make
 * one. `kid` names the signing key, so keys can be rotated by publishing the
 * new public key before signing with it.
 */
export interface TokenClaims {
  /** The user id, as a decimal string. */
  readonly sub: string;
  /** Issued at, seconds since the epoch. */
  readonly iat: number;
  /** Expires at, seconds since the epoch. */
  readonly exp: number;
  /** Key id of the signing key. */
  readonly kid: string;
  /** The session the token belongs to (a decimal id): ending it ends the token (services/user/README.md, "Sessions"). */
  readonly sid: string;
}

export type TokenErrorReason = "malformed" | "unknown_key" | "bad_signature" | "expired" | "session_ended";

export class TokenError extends Error {
  override readonly name = "TokenError";
  constructor(readonly reason: TokenErrorReason) {
    super(`invalid token: ${reason.replace("_", " ")}`);
  }
}

const PREFIX = "chirp1";
// Generous upper bound: a real token is ~200 characters.
const MAX_TOKEN_LENGTH = 1024;

export interface TokenSigner {
  readonly kid: string;
  /** A token of session `sessionId` (the user service's row); without one, a session of its own that only revocation can end (tests, bulk loads). */
  sign(userId: string, ttlSeconds: number, now?: Date, sessionId?: string): { token: string; claims: TokenClaims };
}

export interface TokenVerifier {
  /** Returns the claims of a valid, unexpired token; throws TokenError otherwise. */
  verify(token: string, now?: Date): TokenClaims;
}

export function createTokenSigner(privateKey: string | KeyObject): TokenSigner {
  const key = typeof privateKey === "string" ? createPrivateKey(privateKey) : privateKey;
  if (key.asymmetricKeyType !== "ed25519") throw new Error("token signing key must be an Ed25519 private key");
  const kid = keyId(createPublicKey(key));
  return {
    kid,
    sign(userId, ttlSeconds, now = new Date(), sessionId = randomSessionId()) {
      const iat = Math.floor(now.getTime() / 1000);
      const claims: TokenClaims = { sub: userId, iat, exp: iat + ttlSeconds, kid, sid: sessionId };
      const body = `${PREFIX}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
      const signature = sign(null, Buffer.from(body), key).toString("base64url");
      return { token: `${body}.${signature}`, claims };
    },
  };
}

/** Accepts tokens signed by any of `publicKeys` (current and, during a rotation, previous). */
/**
 * Verified tokens kept per verifier (the gateway's): a token's signature and
 * claims never change, so a token seen before costs a map lookup and the
 * expiry check instead of an Ed25519 verification on every request.
 */
const VERIFIED_CACHE = 10_000;

export function createTokenVerifier(publicKeys: ReadonlyArray<string | KeyObject>): TokenVerifier {
  const keys = new Map<string, KeyObject>();
  for (const k of publicKeys) {
    const key = typeof k === "string" ? createPublicKey(k) : k;
    if (key.asymmetricKeyType !== "ed25519") throw new Error("token verification keys must be Ed25519 public keys");
    keys.set(keyId(key), key);
  }
  if (keys.size === 0) throw new Error("no token verification key");
  const verified = new LruMap<string, TokenClaims>(VERIFIED_CACHE);
  return {
    verify(token, now = new Date()) {
      const known = verified.get(token);
      if (known !== undefined) {
        if (known.exp <= Math.floor(now.getTime() / 1000)) throw new TokenError("expired");
        return known;
      }
      if (token.length > MAX_TOKEN_LENGTH) throw new TokenError("malformed");
      const parts = token.split(".");
      if (parts.length !== 3 || parts[0] !== PREFIX) throw new TokenError("malformed");
      const claims = parseClaims(parts[1]!);
      const key = keys.get(claims.kid);
      if (key === undefined) throw new TokenError("unknown_key");
      const ok = verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2]!, "base64url"));
      if (!ok) throw new TokenError("bad_signature");
      if (claims.exp <= Math.floor(now.getTime() / 1000)) throw new TokenError("expired");
      verified.set(token, claims);
      return claims;
    },
  };
}

function parseClaims(encoded: string): TokenClaims {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"));
  } catch {
    throw new TokenError("malformed");
  }
  const c = value as Partial<TokenClaims> | null;
  if (
    c === null ||
    typeof c !== "object" ||
    typeof c.sub !== "string" ||
    !/^[1-9][0-9]{0,19}$/.test(c.sub) ||
    !Number.isSafeInteger(c.iat) ||
    !Number.isSafeInteger(c.exp) ||
    typeof c.kid !== "string" ||
    typeof c.sid !== "string" ||
    !/^[1-9][0-9]{0,19}$/.test(c.sid)
  ) {
    throw new TokenError("malformed");
  }
  return c as TokenClaims;
}

/** A random 62-bit session id, for a token signed outside a session row. */
function randomSessionId(): string {
  return String((randomBytes(8).readBigUInt64BE() >> 2n) | 1n);
}

/** Short stable id of a public key: the first 16 hex digits of SHA-256 over its DER form. */
export function keyId(publicKey: KeyObject): string {
  return createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex").slice(0, 16);
}

/** A fresh key pair as PEM strings, for `npm start` and tests. */
export function generateTokenKeys(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}
