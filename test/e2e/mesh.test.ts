import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { PUBLIC_API } from "../../gateway/public-api.js";
import type { Mesh } from "../../devcluster/launch.js";
import { SERVICE_NAMES } from "../../lib/mesh.js";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { generateMeshSecret } from "../../lib/auth/assertion.js";
import { expectOnlyVouchedCallers } from "../support/callers.js";

/** The mesh's secret, known here so the test can make (and forge) assertions. */
const MESH_SECRET = generateMeshSecret();

const run = promisify(execFile);

// The whole mesh as `npm start` runs it: seven service processes and the
// gateway, all on ephemeral ports, over a tenant of the shared cluster.
let system: TestSystem;
let mesh: Mesh;

beforeAll(async () => {
  system = await startSystem({ mode: "mesh", router: false, meshSecret: MESH_SECRET });
  mesh = system.mesh;
});

afterAll(async () => {
  await system?.stop();
});

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await run("node_modules/.bin/buf", ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args]);
  return stdout;
}

/** A request for each public unary RPC that passes validation, so the answer shows what the service does. */
const VALID_REQUESTS: Record<string, unknown> = {
  "UserService/SignUp": { handle: "alice", displayName: "Alice", email: "alice@example.com", password: "correct horse" },
  "UserService/LogIn": { handle: "alice", password: "correct horse" },
  "UserService/GetUser": { handle: "alice" },
  "UserService/UpdateProfile": { bio: "hello" },
  "UserService/LogOut": {},
  "UserService/ChangePassword": { currentPassword: "old password", newPassword: "new password" },
  "UserService/ListSessions": {},
  "UserService/RevokeSession": { sessionId: "1" },
  "UserService/DeleteAccount": { password: "not the password" },
  "GraphService/Follow": { userId: "2" },
  "GraphService/Unfollow": { userId: "2" },
  "GraphService/ListFollowers": { userId: "2" },
  "GraphService/ListFollowing": { userId: "2", pageSize: 10 },
  "GraphService/Block": { userId: "2" },
  "GraphService/Unblock": { userId: "2" },
  "GraphService/ListBlocked": { pageSize: 10 },
  "GraphService/Mute": { userId: "2" },
  "GraphService/Unmute": { userId: "2" },
  "GraphService/ListMuted": {},
  "TweetService/PostTweet": { text: "hello #chirp" },
  "TweetService/GetTweet": { tweetId: "1" },
  "TweetService/DeleteTweet": { tweetId: "1" },
  "TweetService/LikeTweet": { tweetId: "1" },
  "TweetService/UnlikeTweet": { tweetId: "1" },
  "TweetService/ListLikedTweets": { userId: "1" },
  "TweetService/GetThread": { tweetId: "1" },
  "TweetService/Repost": { tweetId: "1" },
  "TweetService/Unrepost": { tweetId: "1" },
  "TimelineService/GetHomeTimeline": {},
  "TimelineService/GetUserTimeline": { userId: "1" },
  "SearchService/SearchTweets": { query: "chirp" },
  "SearchService/GetTrends": { limit: 10 },
  "MediaService/GetMedia": { mediaId: "1" },
  "NotificationService/ListNotifications": { pageSize: 10 },
  "NotificationService/GetUnreadCount": {},
  "NotificationService/MarkRead": {},
  // Web Push is not built yet, but each asks for a caller first: an anonymous call is Unauthenticated.
  "NotificationService/GetPushConfig": {},
  "NotificationService/RegisterPush": { endpoint: "https://push.example/1", p256dh: "key", auth: "secret" },
  "NotificationService/UnregisterPush": { endpoint: "https://push.example/1" },
};

/** Services whose RPCs are built; their behaviour has its own end-to-end tests (accounts.test.ts, graph.test.ts). */
const BUILT = new Set(["UserService", "GraphService", "MediaService", "TweetService", "SearchService", "TimelineService", "NotificationService"]);

async function postJson(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${mesh.gatewayUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as { code?: string; message?: string } };
}

describe("every service process", () => {
  it.each(SERVICE_NAMES)("%s lists its RPCs over server reflection (buf curl, no proto files)", async (name) => {
    const listed = (await bufCurl("--list-methods", `http://127.0.0.1:${mesh.services[name].grpcPort}`)).trim().split("\n");
    const desc = PUBLIC_API.find((p) => p.backend === name)!.service;
    const own = listed.filter((line) => !line.startsWith("grpc.health.v1.Health/"));
    expect(own.sort()).toEqual(desc.methods.map((m) => `${desc.typeName}/${m.name}`).sort());
    expect(listed).toContain("grpc.health.v1.Health/Check");
  });

  it.each(SERVICE_NAMES)("%s reports SERVING on grpc.health.v1", async (name) => {
    const desc = PUBLIC_API.find((p) => p.backend === name)!.service;
    const out = await bufCurl("-d", JSON.stringify({ service: desc.typeName }), `http://127.0.0.1:${mesh.services[name].grpcPort}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(out)).toEqual({ status: "SERVING" });
  });

  it("the topology manager published the live topology and serves its metrics", async () => {
    expect(mesh.topology?.epoch).toBeGreaterThanOrEqual(1);
    const text = await (await fetch(`http://127.0.0.1:${mesh.topology!.metricsPort}/metrics`)).text();
    expect(text).toMatch(/chirp_topology_member_up\{[^}]*member="rs0-a"[^}]*\} 1/);
    expect(text).toContain("chirp_topology_heartbeat_writes_total");
  });

  it.each(SERVICE_NAMES)("%s serves Prometheus metrics", async (name) => {
    const res = await fetch(`http://127.0.0.1:${mesh.services[name].metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("chirp_process_cpu_seconds_total");
  });
});

describe("the gateway", () => {
  it("forwards every public unary RPC; a not-yet-built one answers Unimplemented, never a made-up result", async () => {
    const unary = PUBLIC_API.flatMap(({ service, methods }) =>
      methods.filter((m) => service.methods.find((d) => d.name === m)?.methodKind === "unary").map((m) => `${service.name}/${m}`),
    );
    expect(Object.keys(VALID_REQUESTS).sort()).toEqual(unary.sort());
    for (const { service } of PUBLIC_API) {
      for (const [key, body] of Object.entries(VALID_REQUESTS)) {
        if (!key.startsWith(`${service.name}/`)) continue;
        const res = await postJson(`/${service.typeName}/${key.split("/")[1]}`, body);
        if (BUILT.has(service.name)) {
          // Reached the service, which answered for itself (anonymous callers get
          // Unauthenticated or NotFound here; success is fine too), never the
          // gateway's "no such endpoint" or Unimplemented.
          expect({ key, code: res.json.code }).not.toEqual({ key, code: "unimplemented" });
        } else {
          expect({ key, status: res.status, code: res.json.code }).toEqual({ key, status: 501, code: "unimplemented" });
        }
      }
    }
  });

  it("refuses a logged-out session's token within a second (the mesh's gateway follows the ended sessions over NATS too)", async () => {
    const handle = `mesh_lo_${process.pid % 10_000}`;
    const up = await postJson("/chirp.user.v1.UserService/SignUp", { handle, displayName: "m", email: `${handle}@example.com`, password: "correct horse battery" });
    const auth = { authorization: `Bearer ${(up.json as { token: string }).token}` };
    expect((await postJson("/chirp.user.v1.UserService/ListSessions", {}, auth)).status).toBe(200);
    expect((await postJson("/chirp.user.v1.UserService/LogOut", {}, auth)).status).toBe(200);
    await eventually("the token refused", async () => (await postJson("/chirp.user.v1.UserService/ListSessions", {}, auth)).status === 401, { timeoutMs: 1000, intervalMs: 20 });
  });

  it("vouches for callers: a service process's port takes a caller only from the gateway's assertion (issue 21, item 6)", async () => {
    const handle = `mesh_vc_${process.pid % 10_000}`;
    const up = await postJson("/chirp.user.v1.UserService/SignUp", { handle, displayName: "m", email: `${handle}@example.com`, password: "correct horse battery" });
    const { token, user } = up.json as { token: string; user: { id: string } };
    const session = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).sid as string;
    // Through the gateway, a signed-in call crosses the mesh (tweet -> user, timeline -> graph, tweet).
    const auth = { authorization: `Bearer ${token}` };
    expect((await postJson("/chirp.tweet.v1.TweetService/PostTweet", { text: "through the gateway" }, auth)).status).toBe(200);
    expect((await postJson("/chirp.timeline.v1.TimelineService/GetHomeTimeline", {}, auth)).status).toBe(200);
    await expectOnlyVouchedCallers(mesh.gatewayUrl, mesh.services.tweet.grpcPort, MESH_SECRET, user.id, session);
  });

  it("rejects invalid input with InvalidArgument before it reaches a service", async () => {
    const badHandle = await postJson("/chirp.user.v1.UserService/GetUser", { handle: "no spaces allowed" });
    expect(badHandle.status).toBe(400);
    expect(badHandle.json.code).toBe("invalid_argument");
    expect(badHandle.json.message).toContain("handle");

    const unknownField = await postJson("/chirp.user.v1.UserService/GetUser", { handle: "alice", admin: true });
    expect(unknownField.json.code).toBe("invalid_argument");

    const notJson = await postJson("/chirp.user.v1.UserService/GetUser", "{not json");
    expect(notJson.json.code).toBe("invalid_argument");

    const tooLong = await postJson("/chirp.tweet.v1.TweetService/PostTweet", { text: "x".repeat(2801) });
    expect(tooLong.json.code).toBe("invalid_argument");
  });

  it("does not expose internal RPCs", async () => {
    const res = await fetch(`${mesh.gatewayUrl}/chirp.user.v1.UserService/BatchGetUsers`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ userIds: ["1"] }),
    });
    expect(res.status).toBe(404);
  });

  it("returns a request id, echoing a well-formed one from the client", async () => {
    const mine = await postJson("/chirp.user.v1.UserService/GetUser", { handle: "alice" }, { "x-request-id": "trace-123" });
    expect(mine.headers.get("x-request-id")).toBe("trace-123");
    const generated = await postJson("/chirp.user.v1.UserService/GetUser", { handle: "alice" });
    expect(generated.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("speaks gRPC-Web", async () => {
    const client = createClient(UserService, createGrpcWebTransport({ baseUrl: mesh.gatewayUrl }));
    const err = await client.getUser({ lookup: { case: "handle", value: "nobody_here" } }).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.NotFound);
  });

  it("speaks gRPC over HTTP/2 on the same port, including server streams", async () => {
    const transport = createGrpcTransport({ baseUrl: mesh.gatewayUrl });
    const users = createClient(UserService, transport);
    const err = await users.getUser({ lookup: { case: "handle", value: "nobody_here" } }).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.NotFound);

    // A server stream through the gateway: an anonymous caller has no events to
    // follow, and the service's answer arrives as the stream's status.
    const timeline = createClient(TimelineService, transport);
    const streamErr = await (async () => {
      for await (const _ of timeline.streamEvents({})) {
        /* none */
      }
    })().catch((e: unknown) => e);
    expect(ConnectError.from(streamErr).code).toBe(Code.Unauthenticated);
  });

  it("answers a browser's CORS preflight", async () => {
    const res = await fetch(`${mesh.gatewayUrl}/chirp.user.v1.UserService/GetUser`, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:5173",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
  });

  it("serves its own metrics, counting forwarded calls by code", async () => {
    const text = await (await fetch(mesh.gatewayMetricsUrl)).text();
    expect(text).toMatch(/chirp_rpc_server_duration_seconds_count\{[^}]*method="GetUser",code="NotFound"[^}]*\} [1-9]/);
    expect(text).toMatch(/chirp_rpc_client_duration_seconds_count\{[^}]*method="GetUser"/);
  });
});

describe("shutdown", () => {
  it("stops every process it started", async () => {
    // The shared cluster's servers outlive this file; stopping those is test/integration/cluster.test.ts's.
    const pids = [mesh.gatewayPid, mesh.topology!.pid, ...SERVICE_NAMES.map((s) => mesh.services[s].pid)];
    await system.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
