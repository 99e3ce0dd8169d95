// The gateway as the internet sees it: the real gateway process (gateway/main.ts,
// as `npm start` runs it) in front of a stand-in mesh (one grpc-js server
// answering every method of every service, recording what reaches it) and a
// private redis-server for the rate limits. What is checked: only the public
// RPCs get through, rate limits per user, per address and per class with a
// retry hint (and letting requests through while Redis is down), CORS, the
// request size limit, deadlines and request ids on the mesh hop, one access
// log line per request, the web app's files and headers, and the drain on
// SIGTERM.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type HandlerContext } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GraphService } from "../../gen/chirp/graph/v1/graph_service_pb.js";
import { MediaService } from "../../gen/chirp/media/v1/media_service_pb.js";
import { NotificationService } from "../../gen/chirp/notification/v1/notification_service_pb.js";
import { SearchService } from "../../gen/chirp/search/v1/search_service_pb.js";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserSchema } from "../../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { createTokenSigner, generateTokenKeys } from "../../lib/auth/token.js";
import { findBinary } from "../../devcluster/binaries.js";
import { startRedis, type RunningRedis } from "../../devcluster/redis.js";
import { createLogger } from "../../lib/logger.js";
import { SERVICE_NAMES, envName } from "../../lib/mesh.js";
import { createMetrics } from "../../lib/metrics.js";
import { GrpcServer } from "../../lib/rpc/grpc-server.js";
import { CALLER_ID_HEADER, REQUEST_ID_HEADER } from "../../lib/rpc/metadata.js";
import { createAssertionVerifier, generateMeshSecret, parseMeshSecrets, serviceKey } from "../../lib/auth/assertion.js";
import { createCallerCheck } from "../../lib/rpc/callers.js";
import { eventually } from "../support/eventually.js";

const ROOT = join(import.meta.dirname, "../..");

/** ARCHITECTURE.md section 3, word for word: the public API and nothing else. */
const PUBLIC = new Set([
  "chirp.user.v1.UserService/SignUp",
  "chirp.user.v1.UserService/LogIn",
  "chirp.user.v1.UserService/GetUser",
  "chirp.user.v1.UserService/UpdateProfile",
  "chirp.user.v1.UserService/LogOut",
  "chirp.user.v1.UserService/ChangePassword",
  "chirp.user.v1.UserService/ListSessions",
  "chirp.user.v1.UserService/RevokeSession",
  "chirp.user.v1.UserService/DeleteAccount",
  "chirp.graph.v1.GraphService/Follow",
  "chirp.graph.v1.GraphService/Unfollow",
  "chirp.graph.v1.GraphService/ListFollowers",
  "chirp.graph.v1.GraphService/ListFollowing",
  "chirp.graph.v1.GraphService/Block",
  "chirp.graph.v1.GraphService/Unblock",
  "chirp.graph.v1.GraphService/ListBlocked",
  "chirp.graph.v1.GraphService/Mute",
  "chirp.graph.v1.GraphService/Unmute",
  "chirp.graph.v1.GraphService/ListMuted",
  "chirp.tweet.v1.TweetService/PostTweet",
  "chirp.tweet.v1.TweetService/GetTweet",
  "chirp.tweet.v1.TweetService/DeleteTweet",
  "chirp.tweet.v1.TweetService/LikeTweet",
  "chirp.tweet.v1.TweetService/UnlikeTweet",
  "chirp.tweet.v1.TweetService/ListLikedTweets",
  "chirp.tweet.v1.TweetService/GetThread",
  "chirp.tweet.v1.TweetService/Repost",
  "chirp.tweet.v1.TweetService/Unrepost",
  "chirp.timeline.v1.TimelineService/GetHomeTimeline",
  "chirp.timeline.v1.TimelineService/GetUserTimeline",
  "chirp.timeline.v1.TimelineService/StreamEvents",
  "chirp.search.v1.SearchService/SearchTweets",
  "chirp.search.v1.SearchService/GetTrends",
  "chirp.media.v1.MediaService/GetMedia",
  "chirp.notification.v1.NotificationService/ListNotifications",
  "chirp.notification.v1.NotificationService/GetUnreadCount",
  "chirp.notification.v1.NotificationService/MarkRead",
  "chirp.notification.v1.NotificationService/GetPushConfig",
  "chirp.notification.v1.NotificationService/RegisterPush",
  "chirp.notification.v1.NotificationService/UnregisterPush",
]);
const SERVICES: readonly DescService[] = [UserService, GraphService, TweetService, TimelineService, SearchService, MediaService, NotificationService];
const path = (m: DescMethod): string => `${m.parent.typeName}/${m.name}`;
const INTERNAL = SERVICES.flatMap((s) => s.methods).filter((m) => !PUBLIC.has(path(m)));

// --- the stand-in mesh --------------------------------------------------------------

interface Seen {
  readonly method: string;
  readonly requestId: string | null;
  readonly caller: string | null;
  readonly timeoutMs: number | undefined;
}
const seen: Seen[] = [];
let slowGetUserMs = 0;

function record(method: DescMethod, ctx: HandlerContext): void {
  seen.push({
    method: path(method),
    requestId: ctx.requestHeader.get(REQUEST_ID_HEADER),
    caller: ctx.requestHeader.get(CALLER_ID_HEADER),
    timeoutMs: ctx.timeoutMs(),
  });
}

/** Every method of `service`: records the call and answers an empty response (streams: a keepalive, then wait). */
function answerEverything(service: DescService): Record<string, unknown> {
  const impl: Record<string, unknown> = {};
  for (const method of service.methods) {
    switch (method.methodKind) {
      case "unary":
        impl[method.localName] = async (_req: unknown, ctx: HandlerContext) => {
          record(method, ctx);
          if (method === UserService.method.getUser && slowGetUserMs > 0) await new Promise((r) => setTimeout(r, slowGetUserMs));
          if (method === UserService.method.getUser) return { user: create(UserSchema, { id: 7n, handle: "stand_in" }) };
          return {};
        };
        break;
      case "server_streaming":
        impl[method.localName] = async function* (_req: unknown, ctx: HandlerContext) {
          record(method, ctx);
          yield { event: { case: "keepalive", value: {} } };
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        };
        break;
      case "client_streaming":
        impl[method.localName] = async (requests: AsyncIterable<unknown>, ctx: HandlerContext) => {
          record(method, ctx);
          for await (const _ of requests) {
            // drain
          }
          return {};
        };
        break;
      default:
        impl[method.localName] = async function* (_req: unknown, ctx: HandlerContext) {
          record(method, ctx);
        };
    }
  }
  return impl;
}

// --- the gateway process -------------------------------------------------------------

interface GatewayProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Its JSON log lines so far. */
  readonly lines: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "gateway/main.ts"], {
    cwd: ROOT,
    // Its metrics port on any free port: several run at once.
    env: { ...process.env, CHIRP_GATEWAY_METRICS_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const lines: Array<Record<string, unknown>> = [];
  let buffered = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  const [message] = (await Promise.race([
    once(child, "message"),
    once(child, "exit").then(() => {
      throw new Error("gateway exited before it was ready");
    }),
  ])) as [{ port: number }];
  return {
    url: `http://127.0.0.1:${message.port}`,
    child,
    lines,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

// --- setup --------------------------------------------------------------------------

const keys = generateTokenKeys();
const signer = createTokenSigner(keys.privateKey);
const tokenOf = (userId: string): string => signer.sign(userId, 3600).token;

const TEST_MESH_SECRET = generateMeshSecret();
// The fake mesh admits callers as a real one does: from the gateway's assertions.
const mesh = new GrpcServer({
  log: createLogger("mesh", "silent"),
  metrics: createMetrics("mesh"),
  callers: createCallerCheck(createAssertionVerifier(parseMeshSecrets(TEST_MESH_SECRET).flatMap((m) => SERVICE_NAMES.map((n) => serviceKey(m, n))))),
});
let redisDir: string;
let redis: RunningRedis;
let gateway: GatewayProcess;
let meshEnv: Record<string, string>;

beforeAll(async () => {
  for (const s of SERVICES) mesh.register(s, answerEverything(s) as never);
  const port = await mesh.listen("127.0.0.1", 0);
  meshEnv = Object.fromEntries(SERVICE_NAMES.map((name) => [envName.address(name), `127.0.0.1:${port}`]));
  redisDir = mkdtempSync(join(tmpdir(), "chirp-gateway-test-"));
  redis = await startRedis({ binary: findBinary("redis-server", { path: process.env.PATH }), dir: redisDir, log: () => {} });
  gateway = await startGatewayProcess({
    ...meshEnv,
    CHIRP_GATEWAY_PORT: "0",
    CHIRP_TOKEN_PUBLIC_KEYS: keys.publicKey,
    CHIRP_MESH_SECRET: TEST_MESH_SECRET,
    REDIS_URL: redis.url,
    LOG_LEVEL: "info",
    CHIRP_GATEWAY_TIMEOUT_MS: "3000",
    CHIRP_GATEWAY_CORS_ORIGINS: "https://app.example",
    // Small buckets, so that a test reaches them in a few calls. Reads per
    // address stay generous: every test here calls from 127.0.0.1.
    CHIRP_GATEWAY_RATE_READ_USER: "3/m:3",
    CHIRP_GATEWAY_RATE_READ_IP: "1000/s:1000",
    CHIRP_GATEWAY_RATE_WRITE_USER: "1/m:1",
    CHIRP_GATEWAY_RATE_WRITE_IP: "1000/s:1000",
    CHIRP_GATEWAY_RATE_AUTH_IP: "2/m:2",
    CHIRP_GATEWAY_RATE_UPLOAD_USER: "1/m:1",
    CHIRP_GATEWAY_RATE_UPLOAD_IP: "1000/s:1000",
  });
});

afterAll(async () => {
  await gateway?.stop();
  await mesh.close(0);
  await redis?.proc.stop();
  if (redisDir) rmSync(redisDir, { recursive: true, force: true });
});

async function post(url: string, method: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const json = (text === "" ? {} : JSON.parse(text)) as { code?: string; details?: Array<{ type: string; value: string }> };
  return { status: res.status, headers: res.headers, json };
}

async function* oneMessage(): AsyncIterable<Record<string, never>> {
  yield {};
}

/** A valid request body for each method the tests call. */
const GET_USER = { handle: "stand_in" };

// --- tests --------------------------------------------------------------------------

describe("the public API and nothing else", () => {
  it("lists every method of the contract, and the internal ones it keeps out", () => {
    const all = SERVICES.flatMap((s) => s.methods).map(path);
    for (const p of PUBLIC) expect(all).toContain(p);
    expect(INTERNAL.map(path)).toEqual(
      expect.arrayContaining([
        "chirp.user.v1.UserService/BatchGetUsers",
        "chirp.graph.v1.GraphService/ListFollowerIds",
        "chirp.graph.v1.GraphService/ListFollowingIds",
        "chirp.graph.v1.GraphService/ListRelationIds",
        "chirp.tweet.v1.TweetService/BatchGetTweets",
        "chirp.tweet.v1.TweetService/ListAuthorTweets",
        "chirp.media.v1.MediaService/Upload",
        "chirp.media.v1.MediaService/AttachMedia",
        "chirp.media.v1.MediaService/BatchGetMedia",
        "chirp.media.v1.MediaService/ReadMedia",
      ]),
    );
  });

  it("answers every internal method Unimplemented over Connect, gRPC and gRPC-Web, and never calls the mesh", async () => {
    const before = seen.length;
    const token = tokenOf("41");
    const grpc = createGrpcTransport({ baseUrl: gateway.url });
    const grpcWeb = createGrpcWebTransport({ baseUrl: gateway.url, httpVersion: "1.1" });
    for (const method of INTERNAL) {
      const res = await post(gateway.url, path(method), {}, { authorization: `Bearer ${token}` });
      expect({ method: path(method), status: res.status, code: res.json.code }).toEqual({ method: path(method), status: 404, code: "unimplemented" });
      for (const transport of [grpc, grpcWeb]) {
        const client = createClient(method.parent, transport) as unknown as Record<string, (req: unknown, opts: unknown) => unknown>;
        const call = client[method.localName]!;
        let code: Code | undefined;
        try {
          const input = method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming" ? oneMessage() : {};
          const out = call(input, { headers: { authorization: `Bearer ${token}` } });
          if (out !== null && typeof out === "object" && Symbol.asyncIterator in out) {
            for await (const _ of out as AsyncIterable<unknown>) {
              // nothing should arrive
            }
          } else await out;
        } catch (err) {
          code = ConnectError.from(err).code;
        }
        expect({ method: path(method), code }).toEqual({ method: path(method), code: Code.Unimplemented });
      }
    }
    expect(seen.slice(before).map((s) => s.method)).toEqual([]);
  });

  it("forwards a public method with the caller, a request id and a deadline", async () => {
    const before = seen.length;
    const res = await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { authorization: `Bearer ${tokenOf("42")}`, [REQUEST_ID_HEADER]: "my-request-1" });
    expect(res.status).toBe(200);
    expect(res.headers.get(REQUEST_ID_HEADER)).toBe("my-request-1");
    const hop = seen.slice(before);
    expect(hop).toHaveLength(1);
    expect(hop[0]).toMatchObject({ method: "chirp.user.v1.UserService/GetUser", requestId: "my-request-1", caller: "42" });
    // CHIRP_GATEWAY_TIMEOUT_MS (3 s), less the time on the way.
    expect(hop[0]!.timeoutMs).toBeGreaterThan(0);
    expect(hop[0]!.timeoutMs).toBeLessThanOrEqual(3000);
    // A client's own deadline travels instead.
    await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { "connect-timeout-ms": "60000" });
    expect(seen.at(-1)!.timeoutMs).toBeGreaterThan(3000);

    // No id given, or a malformed one: a fresh one, the same on the hop and in the answer.
    const again = await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { [REQUEST_ID_HEADER]: "bad id with spaces" });
    const fresh = again.headers.get(REQUEST_ID_HEADER)!;
    expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.at(-1)).toMatchObject({ requestId: fresh, caller: null });
  });

  it("refuses a client-sent caller id and a bad token", async () => {
    const before = seen.length;
    const res = await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { [CALLER_ID_HEADER]: "1" });
    expect(res.status).toBe(200);
    expect(seen.at(-1)!.caller).toBeNull();
    const bad = await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { authorization: "Bearer chirp1.forged.token" });
    expect(bad.json.code).toBe("unauthenticated");
    expect(seen.length).toBe(before + 1);
  });
});

describe("rate limits", () => {
  it("limits each user's reads, answering ResourceExhausted with retry-after and RetryInfo", async () => {
    const alice = tokenOf("1001");
    const bob = tokenOf("1002");
    for (let i = 0; i < 3; i++) {
      expect((await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { authorization: `Bearer ${alice}` })).status).toBe(200);
    }
    const limited = await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { authorization: `Bearer ${alice}` });
    expect(limited.status).toBe(429);
    expect(limited.json.code).toBe("resource_exhausted");
    // 3 a minute: the next token is about 20 s away.
    const after = Number(limited.headers.get("retry-after"));
    expect(after).toBeGreaterThanOrEqual(15);
    expect(after).toBeLessThanOrEqual(20);
    const detail = limited.json.details?.find((d) => d.type === "google.rpc.RetryInfo");
    expect(detail).toBeDefined();
    // RetryInfo { retry_delay: Duration } - field 1, so the Duration is its payload after 2 bytes of tag and length.
    const duration = fromBinary(DurationSchema, Buffer.from(detail!.value, "base64").subarray(2));
    expect(Number(duration.seconds)).toBeGreaterThanOrEqual(15);
    // Another user is not held back by alice.
    expect((await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { authorization: `Bearer ${bob}` })).status).toBe(200);
  });

  it("limits writes separately from reads, and more strictly", async () => {
    const carol = tokenOf("1003");
    const auth = { authorization: `Bearer ${carol}` };
    expect((await post(gateway.url, "chirp.tweet.v1.TweetService/PostTweet", { text: "one" }, auth)).status).toBe(200);
    const second = await post(gateway.url, "chirp.tweet.v1.TweetService/PostTweet", { text: "two" }, auth);
    expect(second.json.code).toBe("resource_exhausted");
    expect((await post(gateway.url, "chirp.tweet.v1.TweetService/LikeTweet", { tweetId: "1" }, auth)).json.code).toBe("resource_exhausted");
    // Reads have their own bucket.
    expect((await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, auth)).status).toBe(200);
  });

  it("limits sign-up and log-in per client address", async () => {
    const before = seen.length;
    const login = { handle: "someone", password: "not the password" };
    expect((await post(gateway.url, "chirp.user.v1.UserService/LogIn", login)).status).toBe(200);
    expect((await post(gateway.url, "chirp.user.v1.UserService/SignUp", { handle: "x", displayName: "x", email: "x@example.com", password: "longenough" })).status).toBe(200);
    const third = await post(gateway.url, "chirp.user.v1.UserService/LogIn", login);
    expect(third.json.code).toBe("resource_exhausted");
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(seen.length).toBe(before + 2);
  });

  it("limits uploads per user with HTTP 429 and Retry-After", async () => {
    const auth = { authorization: `Bearer ${tokenOf("1004")}`, "content-type": "image/png" };
    const first = await fetch(`${gateway.url}/media`, { method: "POST", headers: auth, body: Buffer.from("not really a png") });
    await first.arrayBuffer();
    expect(first.status).not.toBe(429);
    const second = await fetch(`${gateway.url}/media`, { method: "POST", headers: auth, body: Buffer.from("not really a png") });
    expect(second.status).toBe(429);
    expect(Number(second.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await second.json()) as { code: string }).code).toBe("resource_exhausted");
  });

  it("keeps its buckets in Redis, where they expire once full again", async () => {
    const { Redis } = await import("ioredis");
    const client = new Redis(redis.url);
    try {
      const keys = await client.keys("chirp:ratelimit:*");
      expect(keys).toEqual(expect.arrayContaining(["chirp:ratelimit:read:u:1001", "chirp:ratelimit:auth:ip:127.0.0.1"]));
      const ttl = await client.pttl("chirp:ratelimit:read:u:1001");
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(61_000);
    } finally {
      client.disconnect();
    }
  });
});

describe("at the edge", () => {
  it("answers CORS preflights for configured origins only", async () => {
    const preflight = (origin: string) =>
      fetch(`${gateway.url}/chirp.user.v1.UserService/GetUser`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" },
      });
    const ok = await preflight("https://app.example");
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(ok.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect((await preflight("https://evil.example")).status).toBe(403);
    const call = await fetch(`${gateway.url}/chirp.user.v1.UserService/GetUser`, {
      method: "POST",
      headers: { origin: "https://app.example", "content-type": "application/json" },
      body: JSON.stringify(GET_USER),
    });
    expect(call.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(call.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("retry-after");
  });

  it("refuses an RPC body over 1 MiB without calling the mesh", async () => {
    const before = seen.length;
    const res = await post(gateway.url, "chirp.user.v1.UserService/GetUser", { handle: "a".repeat(1024 * 1024 + 10) });
    expect(res.json.code).toBe("resource_exhausted");
    expect(seen.length).toBe(before);
  });

  it("serves the web app with its content types, cache headers and a strict CSP", async () => {
    const page = await fetch(`${gateway.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("cache-control")).toBe("no-cache");
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    const html = await page.text();
    const script = /<script type="module" src="(\/assets\/app\.[A-Z0-9]+\.js)">/.exec(html)?.[1];
    const style = /<link rel="stylesheet" href="(\/assets\/style\.[A-Z0-9]+\.css)">/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect(style).toBeDefined();

    const js = await fetch(`${gateway.url}${script}`, { headers: { "accept-encoding": "gzip" } });
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await js.text()).length).toBeGreaterThan(1000);
    const css = await fetch(`${gateway.url}${style}`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    const etag = css.headers.get("etag")!;
    expect((await fetch(`${gateway.url}${style}`, { headers: { "if-none-match": etag } })).status).toBe(304);
    const head = await fetch(`${gateway.url}/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect((await fetch(`${gateway.url}/icon.svg`)).headers.get("content-type")).toBe("image/svg+xml");
    expect((await fetch(`${gateway.url}/assets/nothing.js`)).status).toBe(404);
  });

  it("writes one access line per request, with its request id, method, code and duration", async () => {
    const sent = [
      await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { [REQUEST_ID_HEADER]: "access-1" }),
      await post(gateway.url, "chirp.user.v1.UserService/GetUser", { handle: "not valid!" }, { [REQUEST_ID_HEADER]: "access-2" }),
      await post(gateway.url, "chirp.user.v1.UserService/BatchGetUsers", {}, { [REQUEST_ID_HEADER]: "access-3" }),
    ];
    const page = await fetch(`${gateway.url}/`, { headers: { [REQUEST_ID_HEADER]: "access-4" } });
    await page.text();
    expect(sent.map((s) => s.headers.get(REQUEST_ID_HEADER))).toEqual(["access-1", "access-2", "access-3"]);
    await new Promise((r) => setTimeout(r, 200));
    const access = (id: string) => gateway.lines.filter((l) => l.request_id === id && l.duration_ms !== undefined);
    expect(access("access-1")).toEqual([expect.objectContaining({ level: "info", method: "UserService/GetUser", code: "OK", status: 200 })]);
    expect(access("access-2")).toEqual([expect.objectContaining({ method: "UserService/GetUser", code: "InvalidArgument" })]);
    expect(access("access-3")).toEqual([expect.objectContaining({ method: "POST /chirp.user.v1.UserService/BatchGetUsers", status: 404 })]);
    expect(access("access-4")).toEqual([expect.objectContaining({ method: "GET /", code: "OK", status: 200 })]);
    for (const line of gateway.lines.filter((l) => l.duration_ms !== undefined)) {
      expect(typeof line.request_id).toBe("string");
      expect(typeof line.duration_ms).toBe("number");
    }
  });
});

describe("draining on SIGTERM", () => {
  it("finishes a slow call in flight, ends open streams, refuses new connections, then exits", async () => {
    const draining = await startGatewayProcess({
      ...meshEnv,
      CHIRP_GATEWAY_PORT: "0",
      CHIRP_TOKEN_PUBLIC_KEYS: keys.publicKey,
      CHIRP_MESH_SECRET: TEST_MESH_SECRET,
      LOG_LEVEL: "warn",
      CHIRP_SHUTDOWN_GRACE_MS: "5000",
    });
    try {
      slowGetUserMs = 1500;
      const token = tokenOf("2001");
      const client = createClient(TimelineService, createGrpcTransport({ baseUrl: draining.url }));
      const stream = client.streamEvents({}, { headers: { authorization: `Bearer ${token}` } });
      const iterator = stream[Symbol.asyncIterator]();
      expect((await iterator.next()).value?.event.case).toBe("keepalive");
      const streamEnd = iterator.next().then(
        () => "ended",
        (err: unknown) => ConnectError.from(err).code,
      );

      const started = Date.now();
      const slow = post(draining.url, "chirp.user.v1.UserService/GetUser", GET_USER);
      await new Promise((r) => setTimeout(r, 300));
      const exited = once(draining.child, "exit");
      draining.child.kill("SIGTERM");

      // The stream ends at once, telling the client to go elsewhere.
      expect(await streamEnd).toBe(Code.Unavailable);
      // New connections are refused while the slow call finishes.
      await new Promise((r) => setTimeout(r, 200));
      await expect(fetch(`${draining.url}/healthz`)).rejects.toThrow();
      const answer = await slow;
      expect(answer.status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    } finally {
      slowGetUserMs = 0;
      await draining.stop();
    }
  });
});

describe("with Redis down", () => {
  it("lets requests through (fail open) and says so in the log", async () => {
    await redis.proc.stop();
    const dave = tokenOf("1005");
    for (let i = 0; i < 6; i++) {
      expect((await post(gateway.url, "chirp.user.v1.UserService/GetUser", GET_USER, { authorization: `Bearer ${dave}` })).status).toBe(200);
    }
    // The gateway's log reaches this process through a pipe, after the answers may have.
    await eventually("the fail-open warning in the gateway's log", () => gateway.lines.some((l) => l.level === "warn" && String(l.msg).includes("rate limits unavailable")), { timeoutMs: 5_000 });
  });
});
