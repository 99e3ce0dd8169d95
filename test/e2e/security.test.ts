// Issue 12, items 2 and 3: hostile input and authorization through the real
// gateway, with the whole mesh as `npm start` runs it (private cluster, every
// service process, the gateway). Every process writes its log (LOG_LEVEL
// debug) to one file, read back at the end for passwords and tokens.
//
// The fuzz run sends over 10,000 malformed or hostile requests generated from
// a seeded PRNG (the seed is printed; CHIRP_FUZZ_SEED replays one) and checks
// that each answer is well-formed and never Internal/Unknown, that every
// process still lives and answers, and that no row was written but by a
// request that was accepted. A quarter of the requests that carry a token
// carry a valid one (issue 21, item 7), so authenticated handlers see the
// hostile input too.
//
// The rate-limit tests start a second gateway in front of the same mesh that
// does not exempt loopback, with tight limits, trusts loopback as a proxy
// (X-Forwarded-For names the client) and serves /metrics on its public port.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { PUBLIC_API } from "../../gateway/public-api.js";
import { createTokenSigner, generateTokenKeys } from "../../lib/auth/token.js";
import type { Mesh } from "../../devcluster/launch.js";
import { generateMeshSecret } from "../../lib/auth/assertion.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import { expectOnlyVouchedCallers } from "../support/callers.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";

const ROOT = join(import.meta.dirname, "../..");
const keys = generateTokenKeys();
const signer = createTokenSigner(keys.privateKey);
const PASSWORD = "Sekrit-pa55word-never-logged";
const MESH_SECRET = generateMeshSecret();

let system: TestSystem;
let mesh: Mesh;
let db: ShardRouter;
let logDir: string;
let logFile: string;
let logFd: number;
let limited: { url: string; metricsUrl: string; child: ChildProcess } | undefined;

/**
 * A second gateway in front of the same mesh, started once: loopback is not
 * exempt and is a trusted proxy (so X-Forwarded-For names the client), the
 * limits are tight (four wrong passwords per account, then one an hour; six
 * auth calls per address), and /metrics is served on its public port too.
 */
async function limitedGateway(): Promise<{ url: string; metricsUrl: string }> {
  if (limited !== undefined) return limited;
  const child = spawn(process.execPath, ["--import", "tsx", "gateway/main.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...system.env,
      ...mesh.addressEnv,
      LOG_LEVEL: "debug",
      CHIRP_TOKEN_PUBLIC_KEYS: keys.publicKey,
      CHIRP_MESH_SECRET: MESH_SECRET,
      CHIRP_GATEWAY_PORT: "0",
      CHIRP_GATEWAY_METRICS_PORT: "0",
      CHIRP_GATEWAY_PUBLIC_METRICS: "true",
      CHIRP_GATEWAY_TRUSTED_PROXIES: "127.0.0.1,::1",
      CHIRP_GATEWAY_RATE_EXEMPT_IPS: "",
      CHIRP_GATEWAY_RATE_READ_USER: "1/m:20",
      CHIRP_GATEWAY_RATE_WRITE_USER: "1/m:5",
      CHIRP_GATEWAY_RATE_AUTH_IP: "1/h:6",
      CHIRP_GATEWAY_RATE_AUTH_ACCOUNT: "1/h:4",
    },
    stdio: ["ignore", logFd, logFd, "ipc"],
  });
  const [ready] = (await once(child, "message")) as [{ port: number; metricsPort: number }];
  limited = { url: `http://127.0.0.1:${ready.port}`, metricsUrl: `http://127.0.0.1:${ready.metricsPort}/metrics`, child };
  return limited;
}

beforeAll(async () => {
  logDir = mkdtempSync(join(tmpdir(), "chirp-security-"));
  logFile = join(logDir, "mesh.log");
  logFd = openSync(logFile, "a");
  system = await startSystem({
    env: { LOG_LEVEL: "debug" },
    stdio: logFd,
    tokenKeys: { privateKey: keys.privateKey, publicKeys: [keys.publicKey] },
    meshSecret: MESH_SECRET,
  });
  ({ mesh, router: db } = system);
}, 180_000);

afterAll(async () => {
  if (limited !== undefined && limited.child.exitCode === null) {
    const exited = once(limited.child, "exit");
    limited.child.kill("SIGTERM");
    await exited;
  }
  await system?.stop();
  if (logFd !== undefined) closeSync(logFd);
  if (logDir !== undefined) rmSync(logDir, { recursive: true, force: true });
});

// --- the public API ---------------------------------------------------------------

interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  readonly json: Record<string, any>;
  readonly headers: Headers;
}

async function call(method: string, body: unknown, token?: string, headers: Record<string, string> = {}, base = mesh.gatewayUrl): Promise<Answer> {
  const res = await fetch(`${base}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, any>;
  return { status: res.status, code: res.status === 200 ? undefined : (json.code as string), json, headers: res.headers };
}

async function ok(method: string, body: unknown, token?: string, headers: Record<string, string> = {}): Promise<Record<string, any>> {
  const a = await call(method, body, token, headers);
  if (a.status !== 200) throw new Error(`${method}: ${a.status} ${JSON.stringify(a.json)}`);
  return a.json;
}

interface Account {
  readonly id: string;
  readonly handle: string;
  readonly email: string;
  readonly token: string;
}

const tokens: string[] = [];
let serial = 0;
async function signUp(name: string): Promise<Account> {
  const handle = `${name}${process.pid % 1000}x${serial++}`.slice(0, 15);
  const email = `${handle}@secret-mail.example`;
  const { user, token } = await ok("chirp.user.v1.UserService/SignUp", { handle, displayName: name, email, password: PASSWORD });
  tokens.push(token);
  return { id: user.id as string, handle, email, token };
}

const U = "chirp.user.v1.UserService";
const G = "chirp.graph.v1.GraphService";
const T = "chirp.tweet.v1.TweetService";
const TL = "chirp.timeline.v1.TimelineService";
const S = "chirp.search.v1.SearchService";

// --- the database, read with the application account --------------------------

const COUNTED = ["users", "user_handles", "user_emails", "follows", "followers", "tweets", "tweet_lookup", "likes", "tweet_likes", "outbox", "media"];

async function rowCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of COUNTED) {
    const per = await Promise.all(
      db.shards().map(async (s) => {
        const rows = await db.primary(s).query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM chirp.${table}`);
        return Number(rows[0]!.n);
      }),
    );
    counts[table] = per.reduce((a, b) => a + b, 0);
  }
  return counts;
}

// --- a seeded PRNG (mulberry32) ------------------------------------------------------

function prng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <V>(xs: readonly V[]): V => xs[int(xs.length)]!;
  const bytes = (n: number): Buffer => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  return { next, int, pick, bytes };
}

// --- fuzz -------------------------------------------------------------------------------

const ALL_METHODS: DescMethod[] = PUBLIC_API.flatMap((p) => p.service.methods);
const PUBLIC_PATHS = PUBLIC_API.flatMap((p) => p.methods.map((m) => `${p.service.typeName}/${m}`));
const pathOf = (m: DescMethod): string => `${m.parent.typeName}/${m.name}`;
const INTERNAL = ALL_METHODS.filter((m) => !PUBLIC_PATHS.includes(pathOf(m)));
const MIB = 1024 * 1024;

interface FuzzRequest {
  readonly kind: string;
  readonly method: "POST" | "GET" | "PUT" | "DELETE" | "PATCH";
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | string | undefined;
}

type Rng = ReturnType<typeof prng>;

const BAD_IDS: readonly unknown[] = [
  "0",
  0,
  "-1",
  -1,
  "18446744073709551616",
  "99999999999999999999999999",
  "abc",
  "",
  "1e3",
  "0x10",
  " 12",
  1.5,
  true,
  null,
  [],
  {},
  "9223372036854775808",
  "18446744073709551615",
  "１２３",
  "\u0000",
];
const BAD_STRINGS: readonly unknown[] = [
  "",
  "\u0000",
  "\ud800",
  "\u202e\u200b",
  "'; DROP TABLE users; --",
  "<script>alert(1)</script>",
  "%_\\",
  "${jndi:ldap://x}",
  "../../etc/passwd",
  123,
  -5,
  true,
  null,
  [],
  { a: 1 },
  "a".repeat(300),
];
const BAD_PAGE_TOKENS: readonly unknown[] = ["", "garbage", "!!!!", "AAAA", "eyJ9", "\u0000", "a".repeat(5000), 12, null, {}, "Zm9vYmFy", "-1", "99999999999999999999"];

function invalidToken(r: Rng): string {
  const good = signer.sign(String(1 + r.int(1_000_000)), 3600).token;
  switch (r.int(8)) {
    case 0:
      return signer.sign(String(1 + r.int(1000)), 60, new Date(Date.now() - 7200_000)).token; // expired
    case 1: {
      const i = r.int(good.length);
      const c = good[i] === "A" ? "B" : "A";
      return good.slice(0, i) + c + good.slice(i + 1); // tampered
    }
    case 2:
      return createTokenSigner(generateTokenKeysCached()).sign("1", 3600).token; // another key
    case 3:
      return "";
    case 4:
      return r.bytes(1 + r.int(60)).toString("base64");
    case 5:
      return good.split(".").slice(0, 2).join("."); // signature cut off
    case 6:
      return `${good}.extra`;
    default:
      return "x".repeat(1 + r.int(20_000));
  }
}
let otherKey: string | undefined;
function generateTokenKeysCached(): string {
  otherKey ??= generateTokenKeys().privateKey;
  return otherKey;
}

/** A JSON value of the wrong shape for some message. */
function badValue(r: Rng): unknown {
  switch (r.int(6)) {
    case 0:
      return r.pick(BAD_IDS);
    case 1:
      return r.pick(BAD_STRINGS);
    case 2:
      return r.pick(BAD_PAGE_TOKENS);
    case 3:
      return { nested: r.pick(BAD_IDS) };
    case 4:
      return Array.from({ length: r.int(5) }, () => r.pick(BAD_STRINGS));
    default:
      return r.next() * 1e30;
  }
}

/** A request body whose fields are named as the method's but hold hostile values. */
function hostileBody(r: Rng, method: DescMethod): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const f of method.input.fields) {
    if (r.next() < 0.3) continue;
    body[f.jsonName] =
      f.name.endsWith("_id") || f.name.endsWith("_ids")
        ? r.pick(BAD_IDS)
        : f.name.includes("page_token")
          ? r.pick(BAD_PAGE_TOKENS)
          : badValue(r);
  }
  if (r.next() < 0.2) body[`unknown_${r.int(100)}`] = badValue(r);
  return body;
}

function grpcFrame(payload: Buffer, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** Valid session tokens of accounts made for the fuzz run: authenticated handlers get the hostile input too. */
let fuzzTokens: readonly string[] = [];

function fuzzRequest(r: Rng): FuzzRequest {
  const method = r.pick(ALL_METHODS);
  const path = `/${pathOf(method)}`;
  const json = { "content-type": "application/json" };
  // LogOut's request is empty: a valid token would only end the session the rest of the run uses.
  const auth = (): Record<string, string> => {
    const x = r.next();
    if (x < 0.15 && method.name !== "LogOut" && fuzzTokens.length > 0) return { authorization: `Bearer ${r.pick(fuzzTokens)}` };
    return x < 0.6 ? { authorization: `Bearer ${invalidToken(r)}` } : {};
  };
  // SignUp is the one write that needs no token: its bodies must never be valid.
  const kind = r.int(100);
  if (kind < 12) {
    const text = JSON.stringify(hostileBody(r, method));
    const cut = text.slice(0, r.int(text.length));
    const variants = [cut, `${text}}`, "{", "", "null", "[]", "42", '"str"', "{'a':1}", "{\"a\":}", "{\"a\":1,}", "\u0000", "NaN", "{\"__proto__\":{\"x\":1}}"];
    return { kind: "bad-json", method: "POST", path, headers: { ...json, ...auth() }, body: r.pick(variants) };
  }
  if (kind < 40) return { kind: "wrong-types", method: "POST", path, headers: { ...json, ...auth() }, body: JSON.stringify(hostileBody(r, method)) };
  if (kind < 42) {
    const field = r.pick(method.input.fields.map((f) => f.jsonName).concat(["x"]));
    const size = r.next() < 0.5 ? 1000 + r.int(MIB - 2000) : MIB + 1 + r.int(MIB);
    const huge = JSON.stringify({ [field]: "\u00e9".repeat(1).concat("a".repeat(size)) });
    return { kind: size > MIB ? "huge-over-limit" : "huge-within-limit", method: "POST", path, headers: { ...json, ...auth() }, body: huge };
  }
  if (kind < 47) {
    const depth = r.pick([100, 1000, 10_000, 100_000]);
    const open = r.next() < 0.5 ? '{"a":'.repeat(depth) : "[".repeat(depth);
    const close = open.startsWith("{") ? "}".repeat(depth) : "]".repeat(depth);
    const field = method.input.fields[0]?.jsonName ?? "x";
    return { kind: "deep-nesting", method: "POST", path, headers: { ...json, ...auth() }, body: `{"${field}":${open}1${close}}` };
  }
  if (kind < 54) {
    const field = method.input.fields[r.int(Math.max(1, method.input.fields.length))]?.jsonName ?? "text";
    const bad = r.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), r.bytes(8)]);
    return {
      kind: "invalid-utf8",
      method: "POST",
      path,
      headers: { ...json, ...auth() },
      body: Buffer.concat([Buffer.from(`{"${field}":"ab`), bad, Buffer.from('cd"}')]),
    };
  }
  if (kind < 64) {
    // Only tokens that must fail; valid-looking bodies, so authentication is what refuses them.
    const body: Record<string, unknown> = {};
    for (const f of method.input.fields) body[f.jsonName] = f.name.endsWith("_id") ? String(1 + r.int(1e9)) : f.fieldKind === "scalar" && f.scalar === 9 ? "hello" : undefined;
    const header = r.pick([`Bearer ${invalidToken(r)}`, invalidToken(r), "Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", `bearer ${invalidToken(r)}`]);
    return { kind: "bad-token", method: "POST", path, headers: { ...json, authorization: header, [CALLER_ID_HEADER]: String(1 + r.int(100)) }, body: JSON.stringify(body) };
  }
  if (kind < 72) {
    const idField = method.input.fields.find((f) => f.name.endsWith("_id"))?.jsonName ?? "userId";
    const pageField = method.input.fields.find((f) => f.name.includes("page_token"))?.jsonName;
    const body: Record<string, unknown> = { [idField]: r.pick(BAD_IDS) };
    if (pageField !== undefined) body[pageField] = r.pick(BAD_PAGE_TOKENS);
    if (r.next() < 0.3) body.pageSize = r.pick([-1, 0, 101, 2 ** 31, 1e20, "ten"]);
    return { kind: "out-of-range", method: "POST", path, headers: { ...json, ...auth() }, body: JSON.stringify(body) };
  }
  if (kind < 78) {
    const ct = r.pick(["text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/json; charset=latin1", "application/connect+json", "application/grpc+json"]);
    return { kind: "wrong-content-type", method: "POST", path, headers: ct === "" ? {} : { "content-type": ct }, body: JSON.stringify(hostileBody(r, method)) };
  }
  if (kind < 84) {
    const p = r.pick([
      "/chirp.user.v1.UserService/DropAllUsers",
      "/chirp.nope.v1.Nope/Get",
      "/chirp.user.v1.UserService/",
      "/chirp.user.v1.UserService",
      "/../../etc/passwd",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/grpc.health.v1.Health/Check",
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      `/${pathOf(r.pick(INTERNAL))}`,
      `${path}/extra`,
      path.toLowerCase(),
    ]);
    const verb = r.pick(["POST", "GET", "PUT", "DELETE", "PATCH"] as const);
    return { kind: "unknown-method", method: verb, path: p, headers: { ...json, ...auth() }, body: verb === "GET" ? undefined : JSON.stringify(hostileBody(r, method)) };
  }
  if (kind < 92) {
    const ct = r.pick(["application/proto", "application/connect+proto", "application/grpc", "application/grpc+proto"]);
    return { kind: "binary-garbage", method: "POST", path, headers: { "content-type": ct, ...auth() }, body: r.bytes(r.int(2000)) };
  }
  const ct = r.pick(["application/grpc-web+proto", "application/grpc-web", "application/grpc-web-text", "application/grpc-web+json"]);
  const frames = [
    () => r.bytes(r.int(40)),
    () => grpcFrame(r.bytes(r.int(200))),
    () => Buffer.concat([grpcFrame(r.bytes(10)).subarray(0, 5), Buffer.from([0xff, 0xff])]), // length beyond body
    () => {
      const f = Buffer.alloc(5);
      f[0] = 0;
      f.writeUInt32BE(0xffffffff, 1);
      return f;
    },
    () => grpcFrame(r.bytes(r.int(50)), 0x01), // compressed flag with no compression
    () => grpcFrame(Buffer.from("grpc-status: 0\r\n"), 0x80), // a trailer frame from the client
    () => Buffer.concat([grpcFrame(r.bytes(5)), grpcFrame(r.bytes(5))]),
  ];
  return { kind: "grpc-web-garbage", method: "POST", path, headers: { "content-type": ct, "x-grpc-web": "1", ...auth() }, body: r.pick(frames)() };
}

interface FuzzResult {
  readonly kind: string;
  readonly status: number;
  readonly code: string;
  readonly message?: string;
  readonly ms?: number;
}

const GRPC_CODES = ["ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"];

async function send(req: FuzzRequest): Promise<FuzzResult> {
  const t0 = performance.now();
  const abort = new AbortController();
  const res = await fetch(`${mesh.gatewayUrl}${req.path}`, { method: req.method, headers: req.headers, body: req.body, signal: abort.signal });
  // With a valid token an event stream may open, and then stays open: that is its right answer.
  const stream = req.path.endsWith("/StreamEvents") && res.status === 200 ? setTimeout(() => abort.abort(), 1500) : undefined;
  let buf: Buffer;
  try {
    buf = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    if (stream === undefined || !abort.signal.aborted) throw err;
    return { kind: req.kind, status: 200, code: "stream-open", ms: performance.now() - t0 };
  } finally {
    clearTimeout(stream);
  }
  const ct = res.headers.get("content-type") ?? "";
  let code = "none";
  const grpcStatus = res.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/i.exec(buf.toString("latin1"))?.[1];
  if (grpcStatus !== undefined && grpcStatus !== null) code = GRPC_CODES[Number(grpcStatus)] ?? `grpc-${grpcStatus}`;
  else if (ct.startsWith("application/json") && res.status !== 200) {
    try {
      code = String((JSON.parse(buf.toString("utf8")) as { code?: unknown }).code ?? "no-code");
    } catch {
      code = "unparsable-json";
    }
  } else if (res.status === 200) {
    // gRPC puts its status in HTTP trailers, which fetch over HTTP/1.1 cannot read: not known to be ok.
    const grpc = ct.startsWith("application/grpc") && !ct.startsWith("application/grpc-web");
    code = grpc ? "grpc-trailers-unread" : "ok";
  }
  const message =
    code === "internal" || code === "unknown"
      ? (res.headers.get("grpc-message") ?? /grpc-message:\s*([^\r\n]*)/i.exec(buf.toString("latin1"))?.[1] ?? buf.toString("utf8").slice(0, 200))
      : undefined;
  return { kind: req.kind, status: res.status, code, message: message === undefined ? undefined : decodeURIComponent(message), ms: performance.now() - t0 };
}

function isConnectionReset(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return cause?.code === "ECONNRESET" || cause?.code === "EPIPE" || cause?.code === "UND_ERR_SOCKET";
}

/** grpc.health.v1.Health/Check on the whole server: the response's status (1 SERVING). */
async function healthCheck(port: number): Promise<string> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const out = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        { deadline: Date.now() + 5000 },
        (err, res) => (err ? reject(err) : resolve(res!)),
      ),
    );
    return out.length === 2 && out[0] === 0x08 ? (["UNKNOWN", "SERVING", "NOT_SERVING"][out[1]!] ?? String(out[1])) : out.toString("hex");
  } finally {
    client.close();
  }
}

/** What a fuzz request with a valid token may add rows to when it is accepted (the rest must not change at all). */
const MAY_GROW: Readonly<Record<string, readonly string[]>> = {
  tweets: ["TweetService/PostTweet", "TweetService/Repost"],
  tweet_lookup: ["TweetService/PostTweet", "TweetService/Repost"],
  outbox: ["TweetService/PostTweet", "TweetService/Repost", "UserService/UpdateProfile", "UserService/ChangePassword", "UserService/RevokeSession"],
};

describe("fuzz: 10,000+ malformed and hostile requests", () => {
  it("answers every one well-formed, never Internal or Unknown, crashes nothing and writes nothing it refused", { timeout: 240_000 }, async () => {
    const accounts = await Promise.all([signUp("fuzza"), signUp("fuzzb"), signUp("fuzzc")]);
    fuzzTokens = accounts.map((a) => a.token);
    const seed = Number(process.env.CHIRP_FUZZ_SEED ?? 0x5eed12);
    const r = prng(seed);
    const N = 10_240;
    const requests = Array.from({ length: N }, () => fuzzRequest(r));
    const authed = requests.map((q) => fuzzTokens.some((t) => q.headers.authorization === `Bearer ${t}`));
    expect(authed.filter(Boolean).length).toBeGreaterThan(N / 10);
    const before = await rowCounts();
    const started = Date.now();
    const results: FuzzResult[] = new Array(N);
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (;;) {
          const i = next++;
          if (i >= N) return;
          const req = requests[i]!;
          try {
            results[i] = await send(req);
          } catch (err) {
            if (req.kind === "huge-over-limit" && isConnectionReset(err)) {
              // connect-node stops reading a body at the limit and destroys the
              // request, so the socket may close while the client still writes;
              // whether the client reads the resource_exhausted answer first is
              // a race it sometimes loses under load. Only for bodies over the
              // limit; the gateway itself must stay up (checked below).
              results[i] = { kind: req.kind, status: -1, code: "connection-reset-over-limit" };
              continue;
            }
            results[i] = { kind: req.kind, status: -1, code: "transport-error" };
            failures.push(`#${i} ${req.kind} ${req.path}: ${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? "")}`);
          }
        }
      }),
    );
    const histogram: Record<string, number> = {};
    const byKind: Record<string, number> = {};
    const msByKind: Record<string, number> = {};
    for (const res of results) {
      histogram[`${res.status} ${res.code}`] = (histogram[`${res.status} ${res.code}`] ?? 0) + 1;
      byKind[res.kind] = (byKind[res.kind] ?? 0) + 1;
      msByKind[res.kind] = Math.round((msByKind[res.kind] ?? 0) + (res.ms ?? 0));
    }
    const internalMessages: Record<string, number> = {};
    for (const res of results) if (res.message !== undefined) internalMessages[`${res.kind}: ${res.message.replace(/\d+/g, "N").slice(0, 80)}`] = (internalMessages[`${res.kind}: ${res.message.replace(/\d+/g, "N").slice(0, 80)}`] ?? 0) + 1;
    console.log(`fuzz seed ${seed}: ${N} requests in ${Date.now() - started} ms`, { byKind, msByKind, histogram, internalMessages });
    const bad = results
      .map((res, i) => ({ ...res, i, path: requests[i]!.path, body: String(requests[i]!.body ?? "").slice(0, 120) }))
      .filter((res) => res.code !== "connection-reset-over-limit")
      // Unimplemented is Connect's 501, and a proper answer (the push RPCs, to a valid token).
      .filter((res) => res.status < 100 || (res.status >= 500 && res.code !== "unimplemented") || res.code === "internal" || res.code === "unknown" || res.code === "unparsable-json");
    // Nothing was written, but by an accepted request with a valid token. (The
    // outbox may also shrink: the relay publishes the fuzz accounts' sign-ups.)
    const accepted = new Set(results.flatMap((res, i) => (authed[i] && res.code === "ok" ? [requests[i]!.path.slice(1).split(".").at(-1)!] : [])));
    const after = await rowCounts();
    for (const table of COUNTED) {
      const grew = (after[table] ?? 0) - (before[table] ?? 0);
      if (grew === 0 || (table === "outbox" && grew < 0)) continue;
      const writers = (MAY_GROW[table] ?? []).filter((m) => accepted.has(m));
      expect({ table, grew, writers: writers.length > 0 && grew > 0 }).toEqual({ table, grew, writers: true });
    }
    console.log("fuzz: accepted with a valid token", [...accepted].sort());
    // The valid tokens still are: no hostile input ended a session.
    for (const token of fuzzTokens) expect((await call(`${TL}/GetHomeTimeline`, {}, token)).status).toBe(200);
    // Every process is alive and the services still answer.
    for (const pid of [mesh.gatewayPid, ...Object.values(mesh.services).map((s) => s.pid), ...(mesh.topology ? [mesh.topology.pid] : [])]) {
      expect(() => process.kill(pid, 0), `pid ${pid}`).not.toThrow();
    }
    for (const s of Object.values(mesh.services)) expect(await healthCheck(s.grpcPort), s.name).toBe("SERVING");
    expect((await call(`${U}/GetUser`, { handle: "nobody" })).code).toBe("not_found");
    expect(failures.slice(0, 10)).toEqual([]);
    expect(bad.slice(0, 10)).toEqual([]);
  });
});

// --- the authorization matrix ----------------------------------------------------

describe("authorization", () => {
  let alice: Account;
  let bob: Account;
  let carol: Account;
  beforeAll(async () => {
    [alice, bob, carol] = await Promise.all([signUp("alice"), signUp("bob"), signUp("carol")]);
  }, 60_000);

  it("takes the caller from the verified token only: a client-sent caller id is ignored", async () => {
    // No token, a caller id header: still anonymous.
    const anon = await call(`${T}/PostTweet`, { text: "as alice?" }, undefined, { [CALLER_ID_HEADER]: alice.id });
    expect(anon.code).toBe("unauthenticated");
    // Bob's token and alice's id in the header: the tweet is bob's.
    const posted = await ok(`${T}/PostTweet`, { text: "by bob, claiming alice" }, bob.token, { [CALLER_ID_HEADER]: alice.id });
    expect(posted.tweet.authorId).toBe(bob.id);
    // A like sent the same way is bob's, not alice's.
    const aliceTweet = (await ok(`${T}/PostTweet`, { text: "alice's own" }, alice.token)).tweet;
    await ok(`${T}/LikeTweet`, { tweetId: aliceTweet.id }, bob.token, { [CALLER_ID_HEADER]: alice.id });
    expect((await ok(`${T}/GetTweet`, { tweetId: aliceTweet.id }, alice.token)).tweet.likedByViewer ?? false).toBe(false);
    expect((await ok(`${T}/GetTweet`, { tweetId: aliceTweet.id }, bob.token)).tweet.likedByViewer).toBe(true);
    // A follow sent the same way is bob's.
    await ok(`${G}/Follow`, { userId: carol.id }, bob.token, { [CALLER_ID_HEADER]: alice.id });
    // Read anonymously, so from a replica: within a second, not at once (it failed under load, read right away).
    const followerIds = async (): Promise<string[]> => ((await ok(`${G}/ListFollowers`, { userId: carol.id })).users as { id: string }[]).map((u) => u.id);
    const followers = await eventually("carol has a follower", async () => {
      const ids = await followerIds();
      return ids.length > 0 ? ids : undefined;
    });
    expect(followers).toEqual([bob.id]);
    expect((await ok(`${U}/GetUser`, { userId: alice.id })).user.followingCount ?? 0).toBe(0);
    // Updating a profile with alice's id in the header changes bob's.
    await ok(`${U}/UpdateProfile`, { displayName: "changed" }, bob.token, { [CALLER_ID_HEADER]: alice.id });
    expect((await ok(`${U}/GetUser`, { userId: alice.id })).user.displayName).toBe("alice");
  });

  it("takes a caller on the process's own gRPC port only from the gateway's assertion (issue 21, item 6)", async () => {
    const session = JSON.parse(Buffer.from(alice.token.split(".")[1]!, "base64url").toString()).sid as string;
    await expectOnlyVouchedCallers(mesh.gatewayUrl, mesh.services.tweet.grpcPort, MESH_SECRET, alice.id, session);
  });

  it("lets nobody delete another's tweet, nor unlike or unfollow for them", async () => {
    const t = (await ok(`${T}/PostTweet`, { text: "mine to keep" }, alice.token)).tweet;
    for (const headers of [{}, { [CALLER_ID_HEADER]: alice.id }] as Record<string, string>[]) {
      const res = await call(`${T}/DeleteTweet`, { tweetId: t.id }, bob.token, headers);
      expect(["permission_denied", "not_found"]).toContain(res.code);
    }
    expect((await call(`${T}/DeleteTweet`, { tweetId: t.id })).code).toBe("unauthenticated");
    expect((await ok(`${T}/GetTweet`, { tweetId: t.id })).tweet.text).toBe("mine to keep");
    // alice likes and follows; bob's unlike and unfollow touch only his own.
    await ok(`${T}/LikeTweet`, { tweetId: t.id }, alice.token);
    await ok(`${G}/Follow`, { userId: carol.id }, alice.token);
    await call(`${T}/UnlikeTweet`, { tweetId: t.id }, bob.token, { [CALLER_ID_HEADER]: alice.id });
    await call(`${G}/Unfollow`, { userId: carol.id }, carol.token, { [CALLER_ID_HEADER]: alice.id });
    const after = (await ok(`${T}/GetTweet`, { tweetId: t.id }, alice.token)).tweet;
    expect(after.likeCount).toBe(1);
    expect(after.likedByViewer).toBe(true);
    const followers = await ok(`${G}/ListFollowers`, { userId: carol.id });
    expect((followers.users as { id: string }[]).map((u) => u.id).sort()).toEqual([alice.id, bob.id].sort());
  });

  it("never shows one user's email to another", async () => {
    const t = (await ok(`${T}/PostTweet`, { text: "emailcheck tweet" }, alice.token)).tweet;
    await ok(`${G}/Follow`, { userId: alice.id }, bob.token);
    const seen: string[] = [];
    for (const token of [bob.token, undefined]) {
      seen.push(JSON.stringify(await ok(`${U}/GetUser`, { userId: alice.id }, token)));
      seen.push(JSON.stringify(await ok(`${U}/GetUser`, { handle: alice.handle }, token)));
      seen.push(JSON.stringify(await ok(`${T}/GetTweet`, { tweetId: t.id }, token)));
      seen.push(JSON.stringify(await ok(`${G}/ListFollowers`, { userId: alice.id }, token)));
      seen.push(JSON.stringify(await ok(`${G}/ListFollowing`, { userId: bob.id }, token)));
      seen.push(JSON.stringify(await ok(`${TL}/GetUserTimeline`, { userId: alice.id }, token)));
      seen.push(JSON.stringify(await ok(`${S}/SearchTweets`, { query: "emailcheck" }, token)));
    }
    seen.push(JSON.stringify(await ok(`${TL}/GetHomeTimeline`, {}, bob.token)));
    for (const s of seen) expect(s.toLowerCase()).not.toContain(alice.email.toLowerCase());
    // Searching by the email finds nothing of hers either.
    const byEmail = await call(`${S}/SearchTweets`, { query: alice.email }, bob.token);
    expect(JSON.stringify(byEmail.json)).not.toContain(alice.email);
  });

  it("keeps every internal-only RPC out of reach over Connect, gRPC and gRPC-Web", async () => {
    expect(INTERNAL.length).toBeGreaterThan(5);
    const grpc = createGrpcTransport({ baseUrl: mesh.gatewayUrl });
    const grpcWeb = createGrpcWebTransport({ baseUrl: mesh.gatewayUrl, httpVersion: "1.1" });
    for (const method of INTERNAL) {
      for (const token of [alice.token, undefined]) {
        const res = await fetch(`${mesh.gatewayUrl}/${pathOf(method)}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: "{}",
        });
        const json = (await res.json()) as { code?: string };
        expect({ m: pathOf(method), status: res.status, code: json.code }).toEqual({ m: pathOf(method), status: 404, code: "unimplemented" });
        for (const transport of [grpc, grpcWeb]) {
          const client = createClient(method.parent, transport) as unknown as Record<string, (req: unknown, opts: unknown) => unknown>;
          let code: Code | undefined;
          try {
            const input =
              method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming"
                ? (async function* () {
                    yield {};
                  })()
                : {};
            const out = client[method.localName]!(input, { headers: token ? { authorization: `Bearer ${token}` } : {} });
            if (out !== null && typeof out === "object" && Symbol.asyncIterator in out) {
              for await (const _ of out as AsyncIterable<unknown>) {
                // nothing should arrive
              }
            } else await out;
          } catch (err) {
            code = ConnectError.from(err).code;
          }
          expect({ m: pathOf(method), code }).toEqual({ m: pathOf(method), code: Code.Unimplemented });
        }
      }
    }
  });

  it("refuses tampered, expired, foreign-key and truncated tokens with Unauthenticated", async () => {
    const good = alice.token;
    const parts = good.split(".");
    const flip = (s: string): string => (s[s.length - 2] === "A" ? `${s.slice(0, -2)}B${s.slice(-1)}` : `${s.slice(0, -2)}A${s.slice(-1)}`);
    // A body claiming bob with alice's signature.
    const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString()) as Record<string, unknown>;
    const swapped = [parts[0], Buffer.from(JSON.stringify({ ...claims, sub: bob.id })).toString("base64url"), parts[2]].join(".");
    const bad = {
      tamperedSignature: [parts[0], parts[1], flip(parts[2]!)].join("."),
      tamperedBody: [parts[0], flip(parts[1]!), parts[2]].join("."),
      swappedSubject: swapped,
      expired: signer.sign(alice.id, 60, new Date(Date.now() - 3600_000)).token,
      foreignKey: createTokenSigner(generateTokenKeys().privateKey).sign(alice.id, 3600).token,
      truncated: good.slice(0, -5),
      noSignature: `${parts[0]}.${parts[1]}.`,
    };
    for (const [name, token] of Object.entries(bad)) {
      for (const [method, body] of [
        [`${T}/PostTweet`, { text: "should not post" }],
        [`${U}/UpdateProfile`, { displayName: "nope" }],
        [`${TL}/GetHomeTimeline`, {}],
        [`${U}/GetUser`, { userId: alice.id }],
      ] as const) {
        const res = await call(method, body, token);
        expect({ name, method, status: res.status, code: res.code }).toEqual({ name, method, status: 401, code: "unauthenticated" });
      }
    }
    // The same token, untouched, works.
    expect((await call(`${TL}/GetHomeTimeline`, {}, good)).status).toBe(200);
  });

  it("round-trips SQL-looking, HTML-looking and unicode tweet text verbatim through GetTweet and search", async () => {
    const texts = [
      "rtq1 '; DROP TABLE tweets; --",
      "rtq2 <script>alert(1)</script>",
      "rtq3 %_\\ 100% a_b \\\\ \\n",
      "rtq4 \u202eabc\u202c \u200b zero\u200dwidth \u2066isolate\u2069 \ufeffbom",
      "rtq5 \" ' ` ; -- /* */ OR 1=1 <img src=x onerror=alert(1)> &amp; &lt;",
    ];
    const posted = [];
    for (const text of texts) posted.push((await ok(`${T}/PostTweet`, { text }, carol.token)).tweet as { id: string; text: string });
    for (const [i, t] of posted.entries()) {
      expect(t.text).toBe(texts[i]);
      expect((await ok(`${T}/GetTweet`, { tweetId: t.id })).tweet.text).toBe(texts[i]);
      const found = await eventually(
        `rtq${i + 1} found`,
        async () => {
          const page = await ok(`${S}/SearchTweets`, { query: `rtq${i + 1}` });
          return ((page.tweets ?? []) as unknown[]).length > 0 ? page : undefined;
        },
        { timeoutMs: 15_000 },
      );
      expect((found.tweets as { id: string; text: string }[]).map((x) => [x.id, x.text])).toEqual([[t.id, texts[i]]]);
    }
    // Searching for the hostile text itself is a query like any other.
    for (const text of texts) {
      const res = await call(`${S}/SearchTweets`, { query: text });
      expect([200, 400]).toContain(res.status);
      if (res.status === 200) for (const x of (res.json.tweets ?? []) as { text: string }[]) expect(texts).toContain(x.text);
    }
    // And the tables are intact.
    expect((await rowCounts()).tweets).toBeGreaterThan(0);
  });

  it("holds rate limits under a burst when loopback is not exempt, with a retry hint; normal use passes", { timeout: 60_000 }, async () => {
    const { url } = await limitedGateway();
    const dave = await signUp("dave");
    const target = (await ok(`${T}/PostTweet`, { text: "like me" }, carol.token)).tweet;
    // Normal use: a handful of reads and writes pass.
    for (let i = 0; i < 5; i++) expect((await call(`${U}/GetUser`, { userId: alice.id }, dave.token, {}, url)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await call(`${T}/LikeTweet`, { tweetId: target.id }, dave.token, {}, url)).status).toBe(200);
    // A burst of 60 reads: 15 tokens are left, the rest are refused.
    const burst = await Promise.all(Array.from({ length: 60 }, () => call(`${U}/GetUser`, { userId: alice.id }, dave.token, {}, url)));
    const passed = burst.filter((a) => a.status === 200).length;
    const refused = burst.filter((a) => a.code === "resource_exhausted");
    expect(passed).toBeLessThanOrEqual(15);
    expect(passed).toBeGreaterThanOrEqual(13);
    expect(refused.length).toBe(60 - passed);
    for (const a of refused) {
      expect(a.status).toBe(429);
      expect(Number(a.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      const detail = (a.json.details as { type: string; value: string }[] | undefined)?.find((d) => d.type === "google.rpc.RetryInfo");
      expect(detail).toBeDefined();
      const d = fromBinary(DurationSchema, Buffer.from(detail!.value, "base64").subarray(2));
      expect(Number(d.seconds) + d.nanos / 1e9).toBeGreaterThan(0);
    }
    // Writes: 2 left of 5, then refused.
    const writes = await Promise.all(Array.from({ length: 10 }, () => call(`${T}/LikeTweet`, { tweetId: target.id }, dave.token, {}, url)));
    expect(writes.filter((a) => a.status === 200).length).toBeLessThanOrEqual(2);
    expect(writes.filter((a) => a.code === "resource_exhausted").length).toBeGreaterThanOrEqual(8);
    // Another user is not held back by dave; the exempt main gateway is not either.
    expect((await call(`${U}/GetUser`, { userId: alice.id }, alice.token, {}, url)).status).toBe(200);
    expect((await call(`${U}/GetUser`, { userId: alice.id }, dave.token)).status).toBe(200);
  });

  /** The access line of a request, once written (the gateways write it when the response closes). */
  const accessLine = (requestId: string): Promise<Record<string, unknown>> =>
    eventually(`access line of ${requestId}`, async () => {
      for (const line of readFileSync(logFile, "utf8").split("\n")) {
        if (!line.includes(requestId)) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.request_id === requestId && entry.status !== undefined) return entry;
      }
      return undefined;
    });

  it("takes the client from X-Forwarded-For only through a trusted proxy, for the log and the limits", { timeout: 60_000 }, async () => {
    const { url } = await limitedGateway();
    const id = (n: string): string => `xff-${n}-${process.pid}`;
    // The main gateway trusts no proxy: the header is the client's own claim and ignored.
    await call(`${U}/GetUser`, { handle: "nobody" }, undefined, { "x-forwarded-for": "203.0.113.77", "x-request-id": id("main") });
    expect((await accessLine(id("main"))).ip).toBe("127.0.0.1");
    // Through a trusted proxy (loopback, here): the right-most address not a proxy's.
    await call(`${U}/GetUser`, { handle: "nobody" }, undefined, { "x-forwarded-for": "6.6.6.6, 203.0.113.77", "x-request-id": id("one") }, url);
    expect((await accessLine(id("one"))).ip).toBe("203.0.113.77");
    await call(`${U}/GetUser`, { handle: "nobody" }, undefined, { "x-forwarded-for": "203.0.113.78, 127.0.0.1", "x-request-id": id("two") }, url);
    expect((await accessLine(id("two"))).ip).toBe("203.0.113.78");
    // Each forwarded address has its own buckets: six auth calls an hour here.
    const from = (ip: string) => call(`${U}/LogIn`, { handle: "not a handle", password: "x" }, undefined, { "x-forwarded-for": ip }, url);
    const codes: Array<string | undefined> = [];
    for (let i = 0; i < 7; i++) codes.push((await from("198.51.100.9")).code);
    expect(codes).toEqual([...Array<string>(6).fill("invalid_argument"), "resource_exhausted"]);
    expect((await from("198.51.100.10")).code).toBe("invalid_argument");
  });

  it("slows a guess at one account from many addresses, tells no account from none, and lets the owner in from an address he used", { timeout: 60_000 }, async () => {
    const { url } = await limitedGateway();
    const erin = await signUp("erin");
    const logIn = (handle: string, password: string, ip: string) => call(`${U}/LogIn`, { handle, password }, undefined, { "x-forwarded-for": ip }, url);
    // Erin logs in from home once: that address is known to her account from now on.
    const home = await logIn(erin.handle, PASSWORD, "192.0.2.10");
    expect(home.status).toBe(200);
    tokens.push(home.json.token as string);
    // An attack on her account, and on a handle nobody has, one guess per address.
    const guess = async (handle: string, net: number): Promise<string[]> => {
      const seen: string[] = [];
      for (let i = 0; i < 7; i++) {
        const a = await logIn(handle, `${PASSWORD}-guess${i}`, `198.51.${net}.${i + 1}`);
        if (a.code === "resource_exhausted") {
          const retryAfter = Number(a.headers.get("retry-after"));
          expect(retryAfter).toBeGreaterThan(3000);
          expect((a.json.details as { type: string }[]).some((d) => d.type === "google.rpc.RetryInfo")).toBe(true);
          seen.push(`resource_exhausted ~${Math.round(retryAfter / 600)}0 min`);
        } else seen.push(String(a.code));
      }
      return seen;
    };
    const real = await guess(erin.handle, 101);
    const none = await guess(`nobody${process.pid % 100000}`, 102);
    expect(real).toEqual([...Array<string>(4).fill("unauthenticated"), ...Array<string>(3).fill("resource_exhausted ~60 min")]);
    expect(none).toEqual(real);
    // A stranger with the right password waits too (and learns nothing: the same answer).
    expect((await logIn(erin.handle, PASSWORD, "198.51.101.99")).code).toBe("resource_exhausted");
    expect((await logIn(erin.handle.toUpperCase(), PASSWORD, "198.51.101.98")).code).toBe("resource_exhausted");
    // Erin, from home, gets in.
    const again = await logIn(erin.handle, PASSWORD, "192.0.2.10");
    expect(again.status).toBe(200);
    tokens.push(again.json.token as string);
    // Her current password, guessed with her token (stolen, say), is limited by the same rule.
    const change = (current: string, i: number) =>
      call(`${U}/ChangePassword`, { currentPassword: current, newPassword: "another-long-pass" }, again.json.token as string, { "x-forwarded-for": `192.0.2.${40 + i}` }, url);
    const changes: Array<string | undefined> = [];
    for (let i = 0; i < 6; i++) changes.push((await change(`wrong-${i}`, i)).code);
    expect(changes).toEqual([...Array<string>(4).fill("permission_denied"), "resource_exhausted", "resource_exhausted"]);
    expect((await change(PASSWORD, 9)).code).toBe("resource_exhausted");
    // The password did not change: the main gateway (loopback exempt) logs her in with it.
    expect((await call(`${U}/LogIn`, { handle: erin.handle, password: PASSWORD })).status).toBe(200);
  });

  it("serves /metrics on the metrics port, and on the public port only when asked to", async () => {
    const { url, metricsUrl } = await limitedGateway();
    const main = await fetch(`${mesh.gatewayUrl}/metrics`);
    expect(main.status).toBe(404);
    expect(await main.text()).not.toContain("chirp_");
    const scraped = await (await fetch(mesh.gatewayMetricsUrl)).text();
    expect(scraped).toMatch(/chirp_rpc_server_duration_seconds_count\{[^}]*component="gateway"/);
    // The second gateway was asked to (CHIRP_GATEWAY_PUBLIC_METRICS): both ports, with the account limit's decisions.
    for (const u of [`${url}/metrics`, metricsUrl]) {
      const text = await (await fetch(u)).text();
      expect(text).toMatch(/chirp_gateway_rate_limit_decisions_total\{[^}]*class="auth_account",outcome="limited"[^}]*\} [1-9]/);
    }
  });

  it("never writes a password or a token to any process's log", async () => {
    // Log in and make authenticated calls, so the debug logs have had every chance.
    const login = await ok(`${U}/LogIn`, { handle: alice.handle, password: PASSWORD });
    tokens.push(login.token as string);
    await ok(`${TL}/GetHomeTimeline`, {}, login.token as string);
    await call(`${U}/LogIn`, { handle: alice.handle, password: `${PASSWORD}-wrong` });
    await new Promise((r) => setTimeout(r, 500));
    const log = readFileSync(logFile, "utf8");
    expect(log.length).toBeGreaterThan(1000);
    // The log is really there, and the calls reached it.
    expect(log.includes(`"user_id":"${alice.id}"`)).toBe(true);
    expect(log.includes("UserService/LogIn")).toBe(true);
    expect(log.includes(PASSWORD), "password in the log").toBe(false);
    expect(log.includes(encodeURIComponent(PASSWORD)), "URL-encoded password in the log").toBe(false);
    expect(tokens.length).toBeGreaterThanOrEqual(5);
    for (const token of tokens) {
      expect(log.includes(token), "token in the log").toBe(false);
      // Nor its signature alone.
      expect(log.includes(token.split(".").at(-1)!), "token signature in the log").toBe(false);
    }
  });
});
