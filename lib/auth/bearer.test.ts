import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { INVALID_TOKEN_MESSAGE, authenticateBearer } from "./bearer.js";
import { createTokenSigner, createTokenVerifier, generateTokenKeys } from "./token.js";

const keys = generateTokenKeys();
const signer = createTokenSigner(keys.privateKey);
const verifier = createTokenVerifier([keys.publicKey]);

function failure(header: string): ConnectError | undefined {
  try {
    authenticateBearer(header, verifier);
    return undefined;
  } catch (err) {
    return err as ConnectError;
  }
}

describe("authenticateBearer", () => {
  it("no header is an anonymous call", () => {
    expect(authenticateBearer(null, verifier)).toBeUndefined();
  });

  it("a valid bearer token names its user, whatever the scheme's case", () => {
    const { token } = signer.sign("123", 60);
    expect(authenticateBearer(`Bearer ${token}`, verifier)).toBe("123");
    expect(authenticateBearer(`bearer ${token}`, verifier)).toBe("123");
  });

  it("anything else is Unauthenticated with one message", () => {
    const { token } = signer.sign("123", 60);
    const expired = signer.sign("123", 60, new Date(Date.now() - 3600_000)).token;
    const foreign = createTokenSigner(generateTokenKeys().privateKey).sign("123", 60).token;
    for (const header of ["", "Bearer", "Bearer ", `Basic ${token}`, token, "Bearer garbage", `Bearer ${expired}`, `Bearer ${foreign}`, `Bearer ${token}x`, `Bearer ${token} extra`]) {
      const err = failure(header);
      expect(err, header).toBeInstanceOf(ConnectError);
      expect(err?.code, header).toBe(Code.Unauthenticated);
      expect(err?.rawMessage, header).toBe(INVALID_TOKEN_MESSAGE);
    }
  });
});
