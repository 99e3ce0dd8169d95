// A live stream whose client has gone must end on the timeline service too:
// its subscription released, not left open until the next restart. The real
// chain in-process: a client over each public protocol -> the gateway
// (listener, adapter, forwarder) -> grpc-js -> GrpcServer -> the timeline's
// StreamEvents handler and StreamHub. No NATS: the hub's bus is a stand-in
// that hands it the events the test publishes.
//
// Garbage is collected before every abort, because a collection is what lost
// aborts in the end-to-end test: Node 20's fetch (undici 6) follows the
// caller's signal through a WeakRef to the Request it builds inside fetch(),
// and once a collection takes that Request (nothing holds it while the body
// streams), abort() no longer reaches the connection: the client keeps
// reading keepalives and the server, rightly, keeps streaming to it
// (nodejs/undici#3644, nodejs/node#55428). The fetch clients here use
// fetchKeepingAbort, which ends the body itself; the collection still runs
// through the server side's signals and controllers.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createHandlerContext, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimelineService } from "../gen/chirp/timeline/v1/timeline_service_pb.js";
import { UserSchema } from "../gen/chirp/user/v1/user_pb.js";
import { createTokenSigner, createTokenVerifier, generateTokenKeys } from "../lib/auth/token.js";
import type { EventBus } from "../lib/events/bus.js";
import { EVENTS } from "../lib/events/subjects.js";
import { createLogger } from "../lib/logger.js";
import { createMetrics } from "../lib/metrics.js";
import { NO_RELATIONS, type RelationCache } from "../lib/relations.js";
import { GrpcServer } from "../lib/rpc/grpc-server.js";
import { createGrpcTransport as createMeshTransport } from "../lib/rpc/grpc-transport.js";
import type { MeshClients } from "../lib/rpc/mesh-clients.js";
import type { TimelineContext } from "../services/timeline/context.js";
import { createTimelineMetrics } from "../services/timeline/metrics.js";
import { routes } from "../services/timeline/routes.js";
import { createStreamHub, type StreamHub } from "../services/timeline/stream.js";
import { loadGatewayConfig } from "./config.js";
import { forwardingImpl } from "./forward.js";
import { fetchKeepingAbort } from "../test/support/fetch.js";
import { startGateway, type Gateway } from "./server.js";
import { createAssertionVerifier, generateMeshSecret, parseMeshSecrets, serviceKey } from "../lib/auth/assertion.js";
import { createCallerCheck } from "../lib/rpc/callers.js";
import { SERVICE_NAMES } from "../lib/mesh.js";
const TEST_MESH_SECRET = generateMeshSecret();

setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

type Callback = (err: Error | null, msg: { subject: string; data: Uint8Array; headers: undefined }) => void;
const subscribers: Array<{ prefix: string; callback: Callback }> = [];

/** A bus connected at once whose "NATS" is this process: publish() hands an event to the hub's subscriptions. */
const localBus = {
  ready: async () => ({
    nc: {
      subscribe: (subject: string, opts: { callback: Callback }) => {
        const sub = { prefix: subject.replace(/\*$/, ""), callback: opts.callback };
        subscribers.push(sub);
        return { unsubscribe: () => subscribers.splice(subscribers.indexOf(sub), 1) };
      },
      flush: async () => {},
      closed: () => new Promise(() => {}),
    },
  }),
} as unknown as EventBus;

function publish<T extends keyof typeof EVENTS>(type: T, value: MessageInitShape<(typeof EVENTS)[T]["schema"]>): void {
  const { subject, schema } = EVENTS[type];
  const data = toBinary(schema, create(schema, value as never));
  for (const s of subscribers) if (subject.startsWith(s.prefix)) s.callback(null, { subject, data, headers: undefined });
}

/** Mesh clients as far as streams need them: callers follow nobody; every user exists. */
const clients = {
  graph: { listFollowingIds: async () => ({ userIds: [], nextPageToken: "" }) },
  user: { batchGetUsers: async ({ userIds }: { userIds: bigint[] }) => ({ users: userIds.map((id) => create(UserSchema, { id, handle: `u${id}` })) }) },
} as unknown as MeshClients;

describe("a server stream whose client has gone", () => {
  const log = createLogger("timeline", "silent");
  const metrics = createMetrics("timeline");
  const backend = new GrpcServer({ log, metrics, callers: createCallerCheck(createAssertionVerifier(parseMeshSecrets(TEST_MESH_SECRET).flatMap((m) => SERVICE_NAMES.map((n) => serviceKey(m, n))))) });
  const keys = generateTokenKeys();
  const signer = createTokenSigner(keys.privateKey);
  let hub: StreamHub;
  let gateway: Gateway;
  let baseUrl: string;
  let backendPort: number;

  beforeAll(async () => {
    // Keepalives often, so that the handler is as likely to be writing as waiting when the client goes.
    // Nobody here blocks or mutes anyone.
    const relations = { get: async () => NO_RELATIONS } as unknown as RelationCache;
    hub = createStreamHub({ bus: localBus, clients, keepaliveMs: 20, queueLimit: 1000, metrics: createTimelineMetrics(metrics), log, relations });
    const { streamEvents } = routes({ hub, clients } as unknown as TimelineContext);
    backend.register(TimelineService, { streamEvents: streamEvents! });
    backendPort = await backend.listen("127.0.0.1", 0);
    const config = loadGatewayConfig({
      CHIRP_GATEWAY_PORT: "0",
      CHIRP_TIMELINE_ADDR: `127.0.0.1:${backendPort}`,
      CHIRP_TOKEN_PUBLIC_KEYS: keys.publicKey,
      CHIRP_MESH_SECRET: TEST_MESH_SECRET,
      LOG_LEVEL: "silent",
    });
    gateway = await startGateway(config, createLogger("gateway", "silent"), createMetrics("gateway"));
    baseUrl = `http://127.0.0.1:${gateway.port}`;
  });

  afterAll(async () => {
    await gateway?.close();
    await backend.close(100);
    await hub?.close();
  });

  /** Opens a stream for `userId`; resolves once its first message (the keepalive sent after registering) arrived. */
  async function open(transport: Transport, userId: number) {
    const abort = new AbortController();
    let first!: () => void;
    const ready = new Promise<void>((resolve) => (first = resolve));
    const kinds: string[] = [];
    const done = (async () => {
      try {
        const headers = { authorization: `Bearer ${signer.sign(String(userId), 600).token}` };
        for await (const msg of createClient(TimelineService, transport).streamEvents({}, { signal: abort.signal, headers })) {
          kinds.push(msg.event.case ?? "");
          first();
        }
        return "ended";
      } catch (err) {
        return err;
      } finally {
        first();
      }
    })();
    await ready;
    expect(kinds[0], "the stream's first message").toBe("keepalive");
    return { abort, done, kinds };
  }

  const protocols: Array<[string, () => Transport]> = [
    // What a browser uses: Connect JSON over fetch (HTTP/1.1).
    ["Connect over fetch (HTTP/1.1)", () => createConnectTransport({ baseUrl, fetch: fetchKeepingAbort })],
    ["gRPC (HTTP/2)", () => createGrpcTransport({ baseUrl })],
    ["gRPC-Web over fetch (HTTP/1.1)", () => createGrpcWebTransport({ baseUrl, fetch: fetchKeepingAbort })],
  ];

  it.each(protocols)("%s: every aborted stream is released on the server", async (_name, transport) => {
    expect(hub.size).toBe(0);
    // One alone, then several at once.
    for (const batch of [1, 3, 3]) {
      const streams = await Promise.all(Array.from({ length: batch }, (_, i) => open(transport(), 100 + i)));
      expect(hub.size).toBe(batch);
      collectGarbage();
      for (const s of streams) s.abort.abort();
      await expect.poll(() => hub.size, { timeout: 10_000, interval: 10 }).toBe(0);
      for (const s of streams) expect(ConnectError.from(await s.done).code).toBe(Code.Canceled);
    }
  });

  // The e2e test's sequence: two streams of one user and one of another, the
  // first aborted alone, an event to the second, then the other two at once.
  it.each(protocols)("%s: streams aborted after an event are released too", async (_name, transport) => {
    expect(hub.size).toBe(0);
    const streams = [await open(transport(), 201), await open(transport(), 201), await open(transport(), 202)];
    expect(hub.size).toBe(3);
    collectGarbage();
    streams[0]!.abort.abort();
    await expect.poll(() => hub.size, { timeout: 10_000, interval: 10 }).toBe(2);
    publish("userFollowed", { followerId: 202n, followeeId: 201n });
    await expect.poll(() => streams[1]!.kinds.includes("follow"), { timeout: 10_000, interval: 10 }).toBe(true);
    collectGarbage();
    for (const s of streams.slice(1)) s.abort.abort();
    await expect.poll(() => hub.size, { timeout: 10_000, interval: 10 }).toBe(0);
    for (const s of streams) expect(ConnectError.from(await s.done).code).toBe(Code.Canceled);
  });

  // The forwarder's body runs on the response's first pull, and it may wait on
  // the rate limiter: the client can be gone before it opens the mesh stream.
  it("opens no mesh stream for a client that is already gone", async () => {
    const mesh = createMeshTransport({ target: `127.0.0.1:${backendPort}` });
    let opened = 0;
    const counting: Transport = {
      unary: (...args) => mesh.unary(...args),
      stream: (...args) => {
        opened++;
        return mesh.stream(...args);
      },
    };
    const impl = forwardingImpl(TimelineService, ["StreamEvents"], {
      transport: counting,
      defaultTimeoutMs: 10_000,
      log: createLogger("gateway", "silent"),
      metrics: createMetrics("gateway"),
      verifier: createTokenVerifier([keys.publicKey]),
      vouch: () => {},
      limiter: undefined,
      streamsClosing: new AbortController().signal,
    });
    const gone = new AbortController();
    gone.abort();
    const ctx = createHandlerContext({
      service: TimelineService,
      method: TimelineService.method.streamEvents,
      protocolName: "connect",
      requestMethod: "POST",
      url: `${baseUrl}/chirp.timeline.v1.TimelineService/StreamEvents`,
      requestSignal: gone.signal,
      requestHeader: { authorization: `Bearer ${signer.sign("301", 600).token}` },
    });
    const streamEvents = impl[TimelineService.method.streamEvents.localName] as (req: unknown, ctx: unknown) => AsyncIterable<unknown>;
    const stream = streamEvents({}, ctx)[Symbol.asyncIterator]();
    try {
      const first = await stream.next().catch((e: unknown) => e);
      expect(ConnectError.from(first).code).toBe(Code.Canceled);
      expect(opened).toBe(0);
    } finally {
      await stream.return?.();
      mesh.close();
    }
    await expect.poll(() => hub.size, { timeout: 10_000, interval: 10 }).toBe(0);
  });
});
