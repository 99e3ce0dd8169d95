import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaService } from "../../gen/chirp/media/v1/media_service_pb.js";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { UserSchema } from "../../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { createLogger } from "../logger.js";
import { createMetrics } from "../metrics.js";
import { GrpcServer } from "./grpc-server.js";
import { createGrpcTransport } from "./grpc-transport.js";
import { REQUEST_ID_HEADER } from "./metadata.js";

// The adapter between connect-style handlers and grpc-js, exercised over a real
// loopback HTTP/2 connection: a grpc-js server and the grpc-js backed transport.
describe("GrpcServer + grpc transport", () => {
  const metrics = createMetrics("test");
  const server = new GrpcServer({ log: createLogger("test", "silent"), metrics });
  let transport: ReturnType<typeof createGrpcTransport>;
  let users: Client<typeof UserService>;
  let seenRequestId: string | null = null;
  let lastSignal: AbortSignal | undefined;
  // A "watch" call waits for its signal: why it ended, and a hook for its start.
  let watched: Promise<unknown> = Promise.resolve();
  let watchStarted: () => void = () => undefined;

  beforeAll(async () => {
    server
      .register(UserService, {
        getUser(req, ctx) {
          seenRequestId = ctx.requestHeader.get(REQUEST_ID_HEADER);
          lastSignal = ctx.signal;
          if (req.lookup.case === "handle" && req.lookup.value === "nobody") {
            throw new ConnectError("no such user", Code.NotFound);
          }
          if (req.lookup.case === "handle" && req.lookup.value === "crash") {
            throw new Error("SELECT * FROM users exploded");
          }
          if (req.lookup.case === "handle" && req.lookup.value === "watch") {
            const signal = ctx.signal;
            watched = new Promise((resolve) => signal.addEventListener("abort", () => resolve(signal.reason), { once: true }));
            watchStarted();
            return watched.then(() => ({}));
          }
          if (req.lookup.case === "handle" && req.lookup.value === "slow") {
            return new Promise((resolve) => setTimeout(() => resolve({}), 2000));
          }
          return { user: create(UserSchema, { id: 42n, handle: "alice", followerCount: 3 }) };
        },
      })
      .register(TimelineService, {
        async *streamEvents() {
          for (let i = 1n; i <= 3n; i++) {
            yield { event: { case: "homeTweet", value: { tweet: { id: i, text: `tweet ${i}` } } } };
          }
        },
      })
      .register(MediaService, {
        async upload(requests) {
          let size = 0n;
          let contentType = "";
          for await (const part of requests) {
            if (part.part.case === "metadata") contentType = part.part.value.contentType;
            if (part.part.case === "chunk") size += BigInt(part.part.value.length);
          }
          return { media: { id: 7n, contentType, sizeBytes: size } };
        },
      });
    const port = await server.listen("127.0.0.1", 0);
    transport = createGrpcTransport({ target: `127.0.0.1:${port}`, metrics });
    users = createClient(UserService, transport);
  });

  afterAll(async () => {
    transport.close();
    await server.close(100);
  });

  it("serves a unary call and passes metadata through", async () => {
    const res = await users.getUser(
      { lookup: { case: "handle", value: "alice" } },
      { headers: { [REQUEST_ID_HEADER]: "req-1" } },
    );
    expect(res.user?.id).toBe(42n);
    expect(res.user?.followerCount).toBe(3);
    expect(seenRequestId).toBe("req-1");
  });

  it("ends a finished call's signal at once (its deadline timer cleared), with one shared reason, not an error per call", async () => {
    await users.getUser({ lookup: { case: "handle", value: "alice" } }, { timeoutMs: 10_000 });
    const first = lastSignal!;
    await users.getUser({ lookup: { case: "handle", value: "alice" } }, { timeoutMs: 10_000 });
    const second = lastSignal!;
    expect(first).not.toBe(second);
    for (const signal of [first, second]) {
      expect(signal.aborted).toBe(true);
      expect(ConnectError.from(signal.reason).code).toBe(Code.Canceled);
    }
    expect(first.reason).toBe(second.reason);
  });

  it("rejects a request that breaks the proto's validation rules before the handler runs", async () => {
    await expect(users.getUser({ lookup: { case: "handle", value: "not a handle!" } })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await expect(users.getUser({})).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("keeps a handler's own code and hides an unexpected error's details", async () => {
    await expect(users.getUser({ lookup: { case: "handle", value: "nobody" } })).rejects.toMatchObject({
      code: Code.NotFound,
    });
    const err = await users.getUser({ lookup: { case: "handle", value: "crash" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Internal);
    expect((err as ConnectError).rawMessage).not.toContain("SELECT");
  });

  it("answers Unimplemented for a method without a handler", async () => {
    await expect(users.updateProfile({ displayName: "x" })).rejects.toMatchObject({ code: Code.Unimplemented });
  });

  it("enforces the caller's deadline", async () => {
    await expect(
      users.getUser({ lookup: { case: "handle", value: "slow" } }, { timeoutMs: 100 }),
    ).rejects.toMatchObject({ code: Code.DeadlineExceeded });
  });

  it("aborts a handler's signal at the deadline", async () => {
    const started = new Promise<void>((resolve) => (watchStarted = resolve));
    const sent = performance.now();
    const call = users.getUser({ lookup: { case: "handle", value: "watch" } }, { timeoutMs: 150 });
    await started;
    await expect(call).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    const reason = ConnectError.from(await watched);
    // Whichever comes first ends it: the server's deadline (DeadlineExceeded) or the client's
    // cancel at its own, a moment earlier (Canceled); never before the deadline is near.
    expect([Code.DeadlineExceeded, Code.Canceled]).toContain(reason.code);
    expect(performance.now() - sent).toBeGreaterThan(100);
  });

  it("aborts a handler's signal when the client cancels the call", async () => {
    const started = new Promise<void>((resolve) => (watchStarted = resolve));
    const abort = new AbortController();
    const call = users.getUser({ lookup: { case: "handle", value: "watch" } }, { signal: abort.signal, timeoutMs: 10_000 });
    await started;
    abort.abort();
    await expect(call).rejects.toMatchObject({ code: Code.Canceled });
    const reason = ConnectError.from(await watched);
    expect(reason.code).toBe(Code.Canceled);
    expect(reason.rawMessage).toBe("call cancelled by the client");
  });

  it("streams server responses", async () => {
    const timeline = createClient(TimelineService, transport);
    const ids: bigint[] = [];
    for await (const res of timeline.streamEvents({})) {
      if (res.event.case === "homeTweet") ids.push(res.event.value.tweet?.id ?? 0n);
    }
    expect(ids).toEqual([1n, 2n, 3n]);
  });

  it("accepts a client stream", async () => {
    const media = createClient(MediaService, transport);
    async function* parts() {
      yield { part: { case: "metadata" as const, value: { contentType: "image/png", sizeBytes: 6n } } };
      yield { part: { case: "chunk" as const, value: new Uint8Array([1, 2, 3]) } };
      yield { part: { case: "chunk" as const, value: new Uint8Array([4, 5, 6]) } };
    }
    const res = await media.upload(parts());
    expect(res.media?.sizeBytes).toBe(6n);
    expect(res.media?.contentType).toBe("image/png");
  });

  it("handles many concurrent calls without piling listeners onto a shared signal", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on("warning", onWarning);
    try {
      await Promise.all(
        Array.from({ length: 40 }, () => users.getUser({ lookup: { case: "handle", value: "alice" } })),
      );
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.map((w) => w.name)).not.toContain("MaxListenersExceededWarning");
  });

  it("records RPC metrics by service, method and code", async () => {
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/chirp_rpc_server_duration_seconds_count\{[^}]*service="UserService",method="GetUser",code="OK"[^}]*\} [1-9]/);
    expect(text).toMatch(/code="NotFound"/);
    // The client side of the same calls, by the code each ended with.
    expect(text).toMatch(/chirp_rpc_client_duration_seconds_count\{[^}]*service="UserService",method="GetUser",code="OK"[^}]*\} [1-9]/);
    expect(text).toMatch(/chirp_rpc_client_duration_seconds_count\{[^}]*method="GetUser",code="NotFound"[^}]*\} [1-9]/);
  });
});
