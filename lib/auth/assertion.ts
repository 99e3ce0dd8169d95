import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { LruMap } from "../lru.js";
import { SERVICE_NAMES, type ServiceName } from "../mesh.js";

/**
 * Caller assertions: how the gateway vouches for a caller inside the mesh
 * (decision 22). One per public call, in `x-chirp-caller`:
 *
 *   v1;<user>;<session>;<expiry ms>;<kid>;<method>;<macs>
 *
 * `<method>` is the public method the gateway forwarded
 * ("chirp.tweet.v1.TweetService/PostTweet"); `<macs>` is base64url of one
 * 16-byte HMAC-SHA256 per service, in SERVICE_NAMES order, each over the
 * text before it plus ";" and the call's request id (`x-request-id`, which is
 * not repeated in the assertion). Each service's MAC is made with a key of its
 * own, derived from the deployment's mesh secret: the gateway holds the
 * secret, a service holds only its own key. So a service can check what the
 * gateway vouched for but cannot vouch for anyone at another service; all it
 * can do is pass on, unchanged, an assertion it was given, until it expires.
 */
export const ASSERTION_VERSION = "v1";

const MAC_BYTES = 16;
const MACS_LENGTH = Math.ceil((MAC_BYTES * SERVICE_NAMES.length * 4) / 3);
// Generous: a real assertion is ~250 characters.
const MAX_ASSERTION_LENGTH = 512;

/** What an assertion says: who, in which session, for which public method, until when. */
export interface CallerClaims {
  /** The user id, as a decimal string. */
  readonly userId: string;
  /** The session of the user's token, as a decimal string. */
  readonly sessionId: string;
  /** The public method the gateway forwarded: "<service type name>/<method>". */
  readonly method: string;
  /** Expiry, milliseconds since the epoch. */
  readonly expMs: number;
  /** The request id the assertion is bound to. */
  readonly requestId: string;
}

export type AssertionErrorReason = "malformed" | "unknown_key" | "bad_mac" | "expired" | "wrong_request" | "wrong_method" | "replayed" | "unvouched";

export class AssertionError extends Error {
  override readonly name = "AssertionError";
  constructor(readonly reason: AssertionErrorReason) {
    super(`caller not vouched for: ${reason.replace("_", " ")}`);
  }
}

/** One generation of the deployment's mesh secret (CHIRP_MESH_SECRET); `kid` names it in assertions. */
export interface MeshSecret {
  readonly kid: string;
  readonly secret: Buffer;
}

/** One service's key of one secret generation (CHIRP_MESH_KEYS). */
export interface ServiceKey {
  readonly kid: string;
  readonly service: ServiceName;
  readonly key: Buffer;
}

/** A fresh mesh secret, base64url (32 random bytes): `npm start`, launchSystem, the compose `keys` job. */
export function generateMeshSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** CHIRP_MESH_SECRET: one or more base64url secrets (comma-separated; the first signs, a rotation lists the previous one after it). */
export function parseMeshSecrets(value: string): MeshSecret[] {
  const parts = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) throw new Error("no mesh secret found");
  return parts.map((part) => {
    if (!/^[A-Za-z0-9_-]+$/.test(part)) throw new Error("a mesh secret is not base64url");
    const secret = Buffer.from(part, "base64url");
    if (secret.length < 32) throw new Error("a mesh secret must be at least 32 bytes");
    return { kid: createHash("sha256").update(secret).digest("hex").slice(0, 8), secret };
  });
}

/** A service's own key of one secret: HMAC-SHA256(secret, label). Knowing it reveals neither the secret nor another service's key. */
export function serviceKey(secret: MeshSecret, service: ServiceName): ServiceKey {
  return { kid: secret.kid, service, key: createHmac("sha256", secret.secret).update(`chirp mesh caller assertion v1 ${service}`).digest() };
}

/** CHIRP_MESH_KEYS for a process of `services`: `<kid>:<service>:<key>` entries, comma-separated. */
export function formatServiceKeys(secrets: readonly MeshSecret[], services: readonly ServiceName[]): string {
  return secrets.flatMap((s) => services.map((name) => serviceKey(s, name))).map((k) => `${k.kid}:${k.service}:${k.key.toString("base64url")}`).join(",");
}

/** Parses CHIRP_MESH_KEYS. */
export function parseServiceKeys(value: string): ServiceKey[] {
  const parts = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) throw new Error("no service key found");
  return parts.map((part) => {
    const [kid, service, key, extra] = part.split(":");
    if (extra !== undefined || kid === undefined || !/^[0-9a-f]{8}$/.test(kid) || key === undefined || !/^[A-Za-z0-9_-]{43}$/.test(key)) {
      throw new Error("a service key is not <kid>:<service>:<key>");
    }
    if (!(SERVICE_NAMES as readonly string[]).includes(service ?? "")) throw new Error(`a service key names an unknown service: ${service}`);
    return { kid, service: service as ServiceName, key: Buffer.from(key, "base64url") };
  });
}

export interface AssertionSigner {
  /** An assertion for `userId`'s session, for a call of `method` with request id `requestId`, valid `ttlMs`. */
  sign(userId: string, sessionId: string, method: string, requestId: string, ttlMs: number, nowMs?: number): string;
}

/** What a signer needs of the process it signs in (the single process, or a gateway with services of its own). */
export interface InProcessSigning {
  /** This process's verifier: told of each assertion signed here, and the holder of the process's own key. */
  readonly verifier: AssertionVerifier;
  /**
   * The services this process hosts and reaches only in-process: their MACs
   * are made with the process's own key (one MAC for all of them) rather than
   * one service key each. A service the assertion may reach over the network
   * (another process, or another worker behind the same port) must not be
   * named here: it could not check that MAC.
   */
  readonly services: readonly ServiceName[];
}

/**
 * Signs with the first secret. `inProcess`: the process's own verifier and
 * the services it calls in-process. Each assertion signed is remembered there,
 * so checking it in-process is a map lookup; and those services' MACs are one
 * MAC by the process's own key instead of one HMAC each (six of the seven
 * HMACs a public call cost in the single process, 6.5 % of a home read's CPU).
 */
export function createAssertionSigner(secret: MeshSecret, inProcess?: InProcessSigning): AssertionSigner {
  const keys = SERVICE_NAMES.map((name) => serviceKey(secret, name).key);
  const ownKey = SERVICE_NAMES.map((name) => inProcess?.services.includes(name) === true);
  const macs = Buffer.alloc(MAC_BYTES * keys.length);
  return {
    sign(userId, sessionId, method, requestId, ttlMs, nowMs = Date.now()) {
      const expMs = nowMs + ttlMs;
      const body = `${ASSERTION_VERSION};${userId};${sessionId};${expMs};${secret.kid};${method}`;
      const signed = `${body};${requestId}`;
      let processMac: Buffer | undefined;
      for (let i = 0; i < keys.length; i++) {
        const mac = ownKey[i] ? (processMac ??= inProcess!.verifier.processMac(signed)) : createHmac("sha256", keys[i]!).update(signed).digest();
        mac.copy(macs, i * MAC_BYTES, 0, MAC_BYTES);
      }
      const assertion = `${body};${macs.toString("base64url")}`;
      inProcess?.verifier.remember(assertion, { userId, sessionId, method, expMs, requestId });
      return assertion;
    },
  };
}

export interface AssertionVerifier {
  /**
   * The claims of `assertion` for a call to `service` with request id
   * `requestId`: a MAC by this service's key, unexpired, bound to that
   * request id. `once`: the call may run only once (a method that is never
   * retried, called as the method the gateway forwarded): a second use in
   * this process is "replayed". Throws AssertionError.
   */
  verify(assertion: string, service: ServiceName, requestId: string | null, once: boolean, nowMs?: number): CallerClaims;
  /** Records an assertion this process signed itself as verified. */
  remember(assertion: string, claims: CallerClaims): void;
  /**
   * The MAC of `signed` by this process's own key: random, made when the
   * verifier is, never leaving the process. The process's signer puts it in
   * the slots of the services it calls in-process (InProcessSigning), and
   * verify accepts it there as it accepts the service's own MAC.
   */
  processMac(signed: string): Buffer;
}

/**
 * Verified assertions kept per process: a call's hops within one process (and
 * a request's several calls to the same service) check it once. Assertions
 * live seconds, so a small LRU holds every one in use.
 */
const VERIFIED_CACHE = 10_000;

/** Checks assertions with `keys` (this process's services; several generations during a rotation). */
export function createAssertionVerifier(keys: readonly ServiceKey[]): AssertionVerifier {
  const byKid = new Map<string, Array<Buffer | undefined>>();
  for (const k of keys) {
    let row = byKid.get(k.kid);
    if (row === undefined) byKid.set(k.kid, (row = SERVICE_NAMES.map(() => undefined)));
    row[SERVICE_NAMES.indexOf(k.service)] = k.key;
  }
  // Each assertion's claims with the services whose MAC this process has checked (a bit each):
  // one entry, so a hop's check is one lookup and the gateway's remember one insertion.
  const verified = new LruMap<string, { readonly claims: CallerClaims; readonly checked: number }>(VERIFIED_CACHE);
  // Assertions of once-only calls already used here, until they expire.
  const used = new LruMap<string, number>(VERIFIED_CACHE);
  const ALL_CHECKED = (1 << SERVICE_NAMES.length) - 1;
  const ownKey = randomBytes(32);
  const processMac = (signed: string): Buffer => createHmac("sha256", ownKey).update(signed).digest();
  const check = (assertion: string, service: ServiceName, requestId: string | null): CallerClaims => {
    const index = SERVICE_NAMES.indexOf(service);
    const cached = verified.get(assertion);
    const known = cached?.claims;
    if (cached !== undefined && (cached.checked & (1 << index)) !== 0) {
      if (cached.claims.requestId !== requestId) throw new AssertionError("wrong_request");
      return cached.claims;
    }
    if (assertion.length > MAX_ASSERTION_LENGTH) throw new AssertionError("malformed");
    const end = assertion.lastIndexOf(";");
    const body = assertion.slice(0, end);
    const fields = body.split(";");
    const macs = assertion.slice(end + 1);
    if (fields.length !== 6 || fields[0] !== ASSERTION_VERSION || macs.length !== MACS_LENGTH) throw new AssertionError("malformed");
    const [, userId, sessionId, exp, kid, method] = fields as [string, string, string, string, string, string];
    if (!/^[1-9][0-9]{0,19}$/.test(userId) || !/^[1-9][0-9]{0,19}$/.test(sessionId) || !/^[0-9]{1,15}$/.test(exp) || !/^[A-Za-z0-9_.]+\/[A-Za-z0-9_]+$/.test(method)) {
      throw new AssertionError("malformed");
    }
    const key = byKid.get(kid)?.[index];
    if (key === undefined) throw new AssertionError("unknown_key");
    if (requestId === null) throw new AssertionError("wrong_request");
    const given = Buffer.from(macs, "base64url").subarray(index * MAC_BYTES, (index + 1) * MAC_BYTES);
    const signed = `${body};${requestId}`;
    // A request id other than the one signed gives another MAC: it is the same refusal.
    // The slot holds the service's MAC, or, signed in this process, the process's own.
    const matches = (mac: Buffer): boolean => timingSafeEqual(given, mac.subarray(0, MAC_BYTES));
    if (given.length !== MAC_BYTES || !(matches(createHmac("sha256", key).update(signed).digest()) || matches(processMac(signed)))) throw new AssertionError("bad_mac");
    const claims = known ?? { userId, sessionId, method, expMs: Number(exp), requestId };
    verified.set(assertion, { claims, checked: (cached?.checked ?? 0) | (1 << index) });
    return claims;
  };
  return {
    verify(assertion, service, requestId, once, nowMs = Date.now()) {
      const claims = check(assertion, service, requestId);
      if (claims.expMs <= nowMs) throw new AssertionError("expired");
      if (once) {
        const seen = used.get(assertion);
        if (seen !== undefined && seen > nowMs) throw new AssertionError("replayed");
        used.set(assertion, claims.expMs);
      }
      return claims;
    },
    remember(assertion, claims) {
      verified.set(assertion, { claims, checked: ALL_CHECKED });
    },
    processMac,
  };
}
