// A Web Push service on loopback for end-to-end tests: a node HTTPS server
// with a self-signed certificate made here (the system under test trusts it
// through NODE_EXTRA_CA_CERTS), and browsers' subscriptions made the way a
// browser makes them (a P-256 key pair and a 16-byte auth secret). Each
// message that arrives is decrypted with its subscription's keys (RFC 8291,
// aes128gcm of RFC 8188, done here with node:crypto, independently of the
// library the service encrypts with) and its VAPID header checked (RFC 8292:
// an ES256 JWT for this origin, signed by the key `k` it names).
import { execFileSync } from "node:child_process";
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify, type ECDH } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A self-signed certificate for 127.0.0.1, in a temp dir: `certFile` is what NODE_EXTRA_CA_CERTS names. */
export function makeCertificate(): { certFile: string; key: Buffer; cert: Buffer; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "chirp-push-tls-"));
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
  ], { stdio: "ignore" });
  return { certFile, key: readFileSync(keyFile), cert: readFileSync(certFile), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** What a push service does with a subscription's messages. */
export type Mode = "accept" | "gone" | "hang";

/** A browser's side of a subscription. */
export interface Browser {
  readonly endpoint: string;
  readonly p256dh: string;
  readonly auth: string;
  readonly keys: ECDH;
  readonly secret: Buffer;
}

export interface Received {
  readonly subscription: string;
  readonly headers: IncomingMessage["headers"];
  /** The decrypted payload. */
  readonly plaintext: string;
  /** The VAPID JWT's claims, its signature verified against `k`. */
  readonly claims: { aud: string; exp: number; sub: string };
  /** The VAPID public key the request named (k=). */
  readonly vapidKey: string;
}

export interface PushService {
  readonly origin: string;
  /** A new subscription at this push service, answered in `mode`. */
  subscribe(mode: Mode): Browser;
  setMode(browser: Browser, mode: Mode): void;
  /** Messages decrypted and verified, in arrival order. */
  readonly received: Received[];
  /** Requests per subscription (any answer). */
  requests(browser: Browser): number;
  /** Requests held open now, and the most ever held at once. */
  readonly hanging: { now: number; max: number };
  /** A request that could not be decrypted or verified (a test fails on it). */
  readonly errors: string[];
  /** Ends every held request (their senders see the connection drop). */
  releaseHanging(): void;
  close(): Promise<void>;
}

export async function startPushService(tls: { key: Buffer; cert: Buffer }): Promise<PushService> {
  const browsers = new Map<string, { browser: Browser; mode: Mode; requests: number }>();
  const received: Received[] = [];
  const errors: string[] = [];
  const hanging = { now: 0, max: 0 };
  const held = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  let origin = "";

  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const id = (req.url ?? "").replace(/^\/push\//, "");
    const sub = browsers.get(id);
    if (req.method !== "POST" || sub === undefined) {
      res.writeHead(404).end();
      return;
    }
    sub.requests++;
    try {
      const vapid = checkVapid(req.headers.authorization ?? "", origin);
      if (req.headers["content-encoding"] !== "aes128gcm") throw new Error(`content-encoding ${req.headers["content-encoding"]}`);
      const plaintext = decrypt(body, sub.browser.keys, sub.browser.secret).toString("utf8");
      if (sub.mode === "accept") received.push({ subscription: id, headers: req.headers, plaintext, ...vapid });
    } catch (err) {
      errors.push(`${id}: ${(err as Error).message}`);
    }
    if (sub.mode === "hang") {
      held.add(res);
      hanging.now++;
      hanging.max = Math.max(hanging.max, hanging.now);
      res.on("close", () => {
        held.delete(res);
        hanging.now--;
      });
      return;
    }
    res.writeHead(sub.mode === "gone" ? 410 : 201).end();
  };

  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handle(req, res, Buffer.concat(chunks)));
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let n = 0;

  return {
    origin,
    subscribe(mode) {
      const keys = createECDH("prime256v1");
      keys.generateKeys();
      const secret = randomBytes(16);
      const id = `s${++n}-${randomBytes(6).toString("hex")}`;
      const browser: Browser = { endpoint: `${origin}/push/${id}`, p256dh: keys.getPublicKey().toString("base64url"), auth: secret.toString("base64url"), keys, secret };
      browsers.set(id, { browser, mode, requests: 0 });
      return browser;
    },
    setMode(browser, mode) {
      const sub = [...browsers.values()].find((b) => b.browser === browser);
      if (sub !== undefined) sub.mode = mode;
    },
    received,
    requests: (browser) => [...browsers.values()].find((b) => b.browser === browser)?.requests ?? 0,
    hanging,
    errors,
    releaseHanging() {
      for (const res of held) res.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** RFC 8291 section 3.4 and RFC 8188: one aes128gcm record, decrypted with the user agent's keys. */
export function decrypt(body: Buffer, ua: ECDH, authSecret: Buffer): Buffer {
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idLength = body[20]!;
  const serverKey = body.subarray(21, 21 + idLength);
  const record = body.subarray(21 + idLength);
  if (idLength !== 65 || record.length > recordSize) throw new Error("not one aes128gcm record with a P-256 key id");
  const shared = ua.computeSecret(serverKey);
  const keyInfo = Buffer.concat([Buffer.from("WebPush: info\0"), ua.getPublicKey(), serverKey]);
  const ikm = Buffer.from(hkdfSync("sha256", shared, authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: aes128gcm\0"), 16));
  const nonce = Buffer.from(hkdfSync("sha256", ikm, salt, Buffer.from("Content-Encoding: nonce\0"), 12));
  const decipher = createDecipheriv("aes-128-gcm", cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  // The last record: the data, then the delimiter 0x02, then zero padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error("no last-record delimiter");
  return padded.subarray(0, end);
}

/** RFC 8292: `vapid t=<ES256 JWT>, k=<public key>`; the signature verified with k, the audience this origin. */
function checkVapid(authorization: string, origin: string): { claims: Received["claims"]; vapidKey: string } {
  const m = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(authorization);
  if (m === null) throw new Error(`authorization is not vapid: ${authorization.slice(0, 20)}`);
  const [h, p, s] = m[1]!.split(".") as [string, string, string];
  const header = JSON.parse(Buffer.from(h, "base64url").toString()) as { alg?: string };
  if (header.alg !== "ES256") throw new Error(`alg ${header.alg}`);
  const point = Buffer.from(m[2]!, "base64url");
  const key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: point.subarray(1, 33).toString("base64url"), y: point.subarray(33, 65).toString("base64url") }, format: "jwk" });
  if (!verify("sha256", Buffer.from(`${h}.${p}`), { key, dsaEncoding: "ieee-p1363" }, Buffer.from(s, "base64url"))) throw new Error("VAPID signature does not verify");
  const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Received["claims"];
  if (claims.aud !== origin) throw new Error(`aud ${claims.aud}, expected ${origin}`);
  return { claims, vapidKey: m[2]! };
}
