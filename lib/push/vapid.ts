// The VAPID key pair (RFC 8292) that signs Web Push requests: a P-256 key
// kept as PKCS#8 PEM, like the session token key (lib/auth/keys.ts), made on
// first start by `npm start` and docker-compose's `keys` job and handed to the
// notification service only, as CHIRP_PUSH_VAPID_PRIVATE_KEY. Browsers
// subscribe with its public half (GetPushConfig); a new key would orphan every
// subscription, so it is kept across restarts.
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";

/** The key as web-push takes it: base64url, the 65-byte uncompressed public point and the 32-byte private scalar. */
export interface VapidKeys {
  readonly publicKey: string;
  readonly privateKey: string;
  /** The PKCS#8 PEM it was read from. */
  readonly pem: string;
}

/** A new P-256 private key, PKCS#8 PEM. */
export function generateVapidKey(): string {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

/**
 * Reads a PEM P-256 private key (`\n` escapes accepted, as env files carry
 * them) into the base64url halves web-push signs with. Throws a short
 * message when it is not one.
 */
export function parseVapidKey(value: string): VapidKeys {
  const pem = `${(value.includes("\\n") ? value.replace(/\\n/g, "\n") : value).trim()}\n`;
  let jwk: { crv?: string; d?: string; x?: string; y?: string };
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== "ec") throw new Error("not ec");
    jwk = key.export({ format: "jwk" });
  } catch {
    throw new Error("not a readable PEM P-256 private key");
  }
  if (jwk.crv !== "P-256" || jwk.d === undefined || jwk.x === undefined || jwk.y === undefined) throw new Error("the key must be on the P-256 curve");
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, "base64url"), Buffer.from(jwk.y, "base64url")]);
  return { publicKey: point.toString("base64url"), privateKey: Buffer.from(jwk.d, "base64url").toString("base64url"), pem };
}

/** The file `npm start` keeps the VAPID key in, inside the local data dir (beside the token signing key). */
export const VAPID_KEY_FILE = "vapid-key.pem";

/**
 * The VAPID key kept in `path` (mode 0600), made on first use with O_EXCL so
 * two starts racing on a fresh dir agree on one key.
 */
export function loadOrCreateVapidKey(path: string): VapidKeys & { created: boolean } {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let created = false;
  try {
    writeFileSync(path, generateVapidKey(), { mode: 0o600, flag: "wx" });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  return { ...parseVapidKey(readFileSync(path, "utf8")), created };
}

/**
 * The VAPID key `npm start` launches with: CHIRP_PUSH_VAPID_PRIVATE_KEY from
 * the environment wins; otherwise the key in `keyFile`, made on first start.
 */
export function resolveVapidKey(env: { readonly CHIRP_PUSH_VAPID_PRIVATE_KEY?: string | undefined }, keyFile: string): { pem: string; source: string } {
  const given = env.CHIRP_PUSH_VAPID_PRIVATE_KEY;
  if (given !== undefined && given !== "") return { pem: parseVapidKey(given).pem, source: "CHIRP_PUSH_VAPID_PRIVATE_KEY" };
  const loaded = loadOrCreateVapidKey(keyFile);
  return { pem: loaded.pem, source: loaded.created ? `${keyFile} (new)` : keyFile };
}
