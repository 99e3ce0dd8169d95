import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPairSync } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { loadOrCreateTokenKey, parsePrivateKey, parsePublicKeys, publicKeyOf, resolveTokenKeys, unescapePem } from "./keys.js";
import { createTokenSigner, createTokenVerifier, generateTokenKeys } from "./token.js";

const dir = mkdtempSync(join(tmpdir(), "chirp-keys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("token key configuration", () => {
  it("reads several concatenated public keys (rotation), with real or escaped newlines", () => {
    const a = generateTokenKeys();
    const b = generateTokenKeys();
    expect(parsePublicKeys(a.publicKey + b.publicKey)).toHaveLength(2);
    const escaped = (a.publicKey + b.publicKey).replace(/\n/g, "\\n");
    const keys = parsePublicKeys(escaped);
    expect(keys).toHaveLength(2);
    const verifier = createTokenVerifier(keys);
    expect(verifier.verify(createTokenSigner(b.privateKey).sign("9", 60).token).sub).toBe("9");
  });

  it("refuses text without a key, a broken block and a key of another type", () => {
    expect(() => parsePublicKeys("")).toThrow();
    expect(() => parsePublicKeys("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")).toThrow();
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
    expect(() => parsePublicKeys(rsa.publicKey.export({ type: "spki", format: "pem" }).toString())).toThrow(/Ed25519/);
    expect(() => parsePrivateKey(rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString())).toThrow(/Ed25519/);
    expect(() => parsePrivateKey("garbage")).toThrow();
  });

  it("derives the public key from the private one", () => {
    const pair = generateTokenKeys();
    expect(publicKeyOf(pair.privateKey)).toBe(pair.publicKey);
    expect(parsePrivateKey(unescapePem(pair.privateKey.replace(/\n/g, "\\n")))).toBe(pair.privateKey);
  });

  it("makes the signing key file once, mode 0600, and keeps it", () => {
    const path = join(dir, "nested", "token-signing-key.pem");
    const first = loadOrCreateTokenKey(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = loadOrCreateTokenKey(path);
    expect(again.created).toBe(false);
    expect(again.privateKey).toBe(first.privateKey);
    expect(again.publicKey).toBe(publicKeyOf(readFileSync(path, "utf8")));
  });

  it("narrows a key file others can read to 0600, and refuses one that holds no key", () => {
    const path = join(dir, "loose.pem");
    writeFileSync(path, generateTokenKeys().privateKey);
    chmodSync(path, 0o644);
    loadOrCreateTokenKey(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const bad = join(dir, "bad.pem");
    writeFileSync(bad, "not a key", { mode: 0o600 });
    expect(() => loadOrCreateTokenKey(bad)).toThrow();
  });
});

describe("resolveTokenKeys (npm start)", () => {
  it("uses the key file when the environment names no key, and the same key next time", () => {
    const file = join(dir, "start", "token-signing-key.pem");
    const first = resolveTokenKeys({}, file);
    expect(first.source).toContain("(new)");
    expect(first.publicKeys).toEqual([publicKeyOf(first.privateKey)]);
    expect(resolveTokenKeys({}, file).privateKey).toBe(first.privateKey);
  });

  it("prefers CHIRP_TOKEN_PRIVATE_KEY and accepts extra public keys that include its own", () => {
    const file = join(dir, "unused.pem");
    const mine = generateTokenKeys();
    const old = generateTokenKeys();
    const keys = resolveTokenKeys({ CHIRP_TOKEN_PRIVATE_KEY: mine.privateKey, CHIRP_TOKEN_PUBLIC_KEYS: old.publicKey + mine.publicKey }, file);
    expect(keys.privateKey).toBe(mine.privateKey);
    expect(keys.publicKeys).toHaveLength(2);
    expect(existsSync(file)).toBe(false);
    expect(() => resolveTokenKeys({ CHIRP_TOKEN_PRIVATE_KEY: mine.privateKey, CHIRP_TOKEN_PUBLIC_KEYS: old.publicKey }, file)).toThrow(/public half/);
  });
});
