import { Code, ConnectError } from "@connectrpc/connect";
import { TokenError, type TokenClaims, type TokenVerifier } from "./token.js";

/** What every failed authentication answers: one message, whatever the reason (the log keeps the reason). */
export const INVALID_TOKEN_MESSAGE = "invalid or expired token";

/**
 * The caller named by an `Authorization` header value, for the gateway:
 * undefined when there is no header (an anonymous call); the user id when it
 * is `Bearer <valid token>`; Unauthenticated for anything else (another
 * scheme, a malformed, tampered, expired or foreign token). A bad token is
 * refused even on RPCs that need no caller, so a client never mistakes a
 * dead session for a live one.
 */
export function authenticateBearer(authorization: string | null, verifier: TokenVerifier, now?: Date): string | undefined {
  return authenticateBearerClaims(authorization, verifier, now)?.sub;
}

/** As authenticateBearer, with the token's claims: the user (`sub`) and the session (`sid`). */
export function authenticateBearerClaims(authorization: string | null, verifier: TokenVerifier, now?: Date): TokenClaims | undefined {
  if (authorization === null) return undefined;
  const match = /^Bearer +([^ ]+) *$/i.exec(authorization);
  if (match === null) throw unauthenticated("malformed");
  try {
    return verifier.verify(match[1]!, now);
  } catch (err) {
    if (err instanceof TokenError) throw unauthenticated(err.reason);
    throw err;
  }
}

function unauthenticated(reason: string): ConnectError {
  return new ConnectError(INVALID_TOKEN_MESSAGE, Code.Unauthenticated, undefined, undefined, new Error(`token ${reason}`));
}
