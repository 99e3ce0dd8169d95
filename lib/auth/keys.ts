import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { generateMeshSecret, parseMeshSecrets } from "./assertion.js";
import { generateTokenKeys } from "./token.js";

/**
 * Token key material as it travels in configuration: PEM text. An env var may
 * hold literal `\n` escapes instead of newlines (docker-compose `.env` files
 * and `-e` flags cannot carry a multi-line value), so both are accepted.
 */
export function unescapePem(value: string): string {
  return value.includes("\\n") ? value.replace(/\\n/g, "\n") : value;
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Splits a value holding one or more PEM blocks (CHIRP_TOKEN_PUBLIC_KEYS: the
 * current key and, during a rotation, the previous one, concatenated) into
 * single blocks. Throws when there is none or a block is not an Ed25519
 * public key.
 */
export function parsePublicKeys(value: string): string[] {
  const blocks = [...unescapePem(value).matchAll(PEM_BLOCK)].map((m) => m[0]);
  if (blocks.length === 0) throw new Error("no PEM public key found");
  for (const block of blocks) {
    let type: string | undefined;
    try {
      type = createPublicKey(block).asymmetricKeyType;
    } catch {
      throw new Error("a PEM block is not a readable public key");
    }
    if (type !== "ed25519") throw new Error(`public keys must be Ed25519, got ${type ?? "unknown"}`);
  }
  return blocks;
}

/** Checks a PEM private key (CHIRP_TOKEN_PRIVATE_KEY) and returns it normalised. */
export function parsePrivateKey(value: string): string {
  const pem = unescapePem(value).trim();
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch {
    throw new Error("not a readable PEM private key");
  }
  if (type !== "ed25519") throw new Error(`the private key must be Ed25519, got ${type ?? "unknown"}`);
  return `${pem}\n`;
}

/** The public half of a private key, as PEM (SPKI). */
export function publicKeyOf(privateKeyPem: string): string {
  return createPublicKey(createPrivateKey(privateKeyPem)).export({ type: "spki", format: "pem" }).toString();
}

export interface TokenKeyPair {
  readonly privateKey: string;
  readonly publicKey: string;
}

/**
 * The signing key kept in `path` (PKCS#8 PEM, mode 0600), made on first use.
 * `npm start` keeps it in the data dir, so tokens outlive a restart. Created
 * with O_EXCL: two starts racing on a fresh dir cannot both write one and
 * hand out tokens the other does not accept. A file others can read is
 * narrowed to 0600 rather than refused: it is ours, in our data dir.
 */
export function loadOrCreateTokenKey(path: string): TokenKeyPair & { created: boolean } {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let created = false;
  try {
    writeFileSync(path, generateTokenKeys().privateKey, { mode: 0o600, flag: "wx" });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const privateKey = parsePrivateKey(readFileSync(path, "utf8"));
  return { privateKey, publicKey: publicKeyOf(privateKey), created };
}

/** The file `npm start` keeps its signing key in, inside the local data dir. */
export const TOKEN_KEY_FILE = "token-signing-key.pem";

/**
 * The token keys `npm start` launches the mesh with. CHIRP_TOKEN_PRIVATE_KEY
 * from the environment wins; otherwise the key in `keyFile`, made on first
 * start. CHIRP_TOKEN_PUBLIC_KEYS, when set, is what the gateway accepts (a
 * rotation lists the old key too) and must include the signing key's half.
 */
export function resolveTokenKeys(
  env: { readonly CHIRP_TOKEN_PRIVATE_KEY?: string | undefined; readonly CHIRP_TOKEN_PUBLIC_KEYS?: string | undefined },
  keyFile: string,
): { privateKey: string; publicKeys: string[]; source: string } {
  let privateKey: string;
  let source: string;
  if (env.CHIRP_TOKEN_PRIVATE_KEY !== undefined && env.CHIRP_TOKEN_PRIVATE_KEY !== "") {
    privateKey = parsePrivateKey(env.CHIRP_TOKEN_PRIVATE_KEY);
    source = "CHIRP_TOKEN_PRIVATE_KEY";
  } else {
    const loaded = loadOrCreateTokenKey(keyFile);
    privateKey = loaded.privateKey;
    source = loaded.created ? `${keyFile} (new)` : keyFile;
  }
  const own = publicKeyOf(privateKey);
  const given = env.CHIRP_TOKEN_PUBLIC_KEYS;
  const publicKeys = given === undefined || given === "" ? [own] : parsePublicKeys(given);
  const ownDer = createPublicKey(own).export({ type: "spki", format: "der" });
  if (!publicKeys.some((k) => createPublicKey(k).export({ type: "spki", format: "der" }).equals(ownDer))) {
    throw new Error("CHIRP_TOKEN_PUBLIC_KEYS does not include the public half of the signing key: no token would verify");
  }
  return { privateKey, publicKeys, source };
}

/** The file `npm start` keeps the mesh secret in (CHIRP_MESH_SECRET, decision 22), beside the token key. */
export const MESH_SECRET_FILE = "mesh-secret";

/**
 * The mesh secret `npm start` launches with: CHIRP_MESH_SECRET from the
 * environment, else the one in `file` (mode 0600, made on first start with
 * O_EXCL, as the token key). Kept so that operator tools run beside it (the
 * seed CLI's backdated import) can vouch for the users they act as.
 */
export function resolveMeshSecret(env: { readonly CHIRP_MESH_SECRET?: string | undefined }, file: string): { secret: string; source: string } {
  if (env.CHIRP_MESH_SECRET !== undefined && env.CHIRP_MESH_SECRET !== "") {
    parseMeshSecrets(env.CHIRP_MESH_SECRET);
    return { secret: env.CHIRP_MESH_SECRET, source: "CHIRP_MESH_SECRET" };
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  let created = false;
  try {
    writeFileSync(file, `${generateMeshSecret()}\n`, { mode: 0o600, flag: "wx" });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  const secret = readFileSync(file, "utf8").trim();
  parseMeshSecrets(secret);
  return { secret, source: created ? `${file} (new)` : file };
}
