import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { MediaService } from "../../gen/chirp/media/v1/media_service_pb.js";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { UserSchema } from "../../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { createLogger } from "../logger.js";
import { createMetrics } from "../metrics.js";
import { InProcessServices, markDeadline } from "./in-process.js";
import { ASSERTION_HEADER, CALLER_ID_HEADER, REQUEST_ID_HEADER } from "./metadata.js";
import { createAssertionSigner, createAssertionVerifier, generateMeshSecret, parseMeshSecrets, serviceKey } from "../auth/assertion.js";
import { SERVICE_NAMES } from "../mesh.js";
import { createCallerCheck } from "./callers.js";

// The in-process transport keeps every contract of a gRPC hop (in-process.ts):
// the same checks as grpc-server.test.ts, with no server between.
describe("in-process transport", () => {
  const metrics = createMetrics("all");
  const secret = parseMeshSecrets(generateMeshSecret())[0]!;
  const signer = createAssertionSigner(secret);
  const services = new InProcessServices(
    [UserService, TimelineService, MediaService],
    createCallerCheck(createAssertionVerifier(SERVICE_NAMES.map((n) => serviceKey(secret, n)))),
  );
  const seen: { requestId: string | null; callerId: string | null; signal?: AbortSignal; timeoutMs?: number | undefined } = { requestId: null, callerId: null };
  let handled = 0;
  let streamClosed = false;
  let users: Client<typeof UserService>;
  let timeline: Client<typeof TimelineService>;
  let media: Client<typeof MediaService>;

  beforeAll(() => {
    const log = createLogger("test", "silent");
    services
      .register(
        UserService,
        {
          async getUser(req, ctx) {
            handled++;
            seen.requestId = ctx.requestHeader.get(REQUEST_ID_HEADER);
            seen.callerId = ctx.requestHeader.get(CALLER_ID_HEADER);
            seen.signal = ctx.signal;
            seen.timeoutMs = ctx.timeoutMs();
            const handle = req.lookup.case === "handle" ? req.lookup.value : "";
            if (handle === "nobody") throw new ConnectError("no such user", Code.NotFound, { "retry-after": "3" });
            if (handle === "crash") throw new Error("SELECT * FROM users exploded");
            if (handle === "slow") {
              await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
              return {};
            }
            ctx.responseTrailer.set("x-served-by", "user");
            // A partial answer becomes a full message, as a server's encoder would make it.
            return { user: { id: 42n, handle: "alice", followerCount: 3 } };
          },
        },
        "user",
        metrics,
        log,
      )
      .register(
        TimelineService,
        {
          async *streamEvents() {
            try {
              for (let i = 1n; i <= 100n; i++) yield { event: { case: "homeTweet", value: { tweet: { id: i, text: `tweet ${i}` } } } };
            } finally {
              streamClosed = true;
            }
          },
        },
        "timeline",
        metrics,
        log,
      )
      .register(
        MediaService,
        {
          // A handler that calls another in-process service on its caller's behalf, as onBehalfOf does.
          async batchGetMedia(req, ctx) {
            const timeoutMs = ctx.timeoutMs();
            await users.getUser({ lookup: { case: "handle", value: req.mediaIds[0] === 1n ? "slow" : "alice" } }, { signal: ctx.signal, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
            return { media: [] };
          },
          async upload(requests) {
            let size = 0n;
            for await (const part of requests) if (part.part.case === "chunk") size += BigInt(part.part.value.length);
            return { media: { id: 7n, sizeBytes: size } };
          },
        },
        "media",
        metrics,
        log,
      );
    services.open();
    users = createClient(UserService, services.transport());
    timeline = createClient(TimelineService, services.transport());
    media = createClient(MediaService, services.transport());
  });

  it("answers with a full message, the trailers set, and the request's headers seen by the handler", async () => {
    const headers = { [REQUEST_ID_HEADER]: "req-1", [ASSERTION_HEADER]: signer.sign("7", "3", "chirp.user.v1.UserService/GetUser", "req-1", 60_000) };
    let trailer: Headers | undefined;
    const res = await users.getUser({ lookup: { case: "handle", value: "alice" } }, { headers, onTrailer: (t) => (trailer = t) });
    expect(res.user).toEqual(create(UserSchema, { id: 42n, handle: "alice", followerCount: 3 }));
    expect(seen).toMatchObject({ requestId: "req-1", callerId: "7", timeoutMs: undefined });
    expect(trailer?.get("x-served-by")).toBe("user");
  });

  it("admits a caller only from a verified assertion, as the gRPC server does", async () => {
    const forged = await users.getUser({ lookup: { case: "handle", value: "alice" } }, { headers: { [CALLER_ID_HEADER]: "7" } }).catch((e: unknown) => ConnectError.from(e));
    expect((forged as ConnectError).code).toBe(Code.Unauthenticated);
    const otherRequest = { [REQUEST_ID_HEADER]: "req-2", [ASSERTION_HEADER]: signer.sign("7", "3", "chirp.user.v1.UserService/GetUser", "req-1", 60_000) };
    const moved = await users.getUser({ lookup: { case: "handle", value: "alice" } }, { headers: otherRequest }).catch((e: unknown) => ConnectError.from(e));
    expect((moved as ConnectError).code).toBe(Code.Unauthenticated);
    const before = handled;
    await users.getUser({ lookup: { case: "handle", value: "alice" } });
    expect(handled).toBe(before + 1);
    expect(seen.callerId).toBeNull();
  });

  it("refuses a request that breaks the proto's rules before the handler runs", async () => {
    const before = handled;
    const err = await users.getUser({ lookup: { case: "handle", value: "not a handle!" } }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect(handled).toBe(before);
  });

  it("passes a handler's decision on with its metadata, and masks anything else as Internal without its cause", async () => {
    const notFound = ConnectError.from(await users.getUser({ lookup: { case: "handle", value: "nobody" } }).catch((e: unknown) => e));
    expect(notFound.code).toBe(Code.NotFound);
    expect(notFound.rawMessage).toBe("no such user");
    expect(notFound.metadata.get("retry-after")).toBe("3");

    const crash = ConnectError.from(await users.getUser({ lookup: { case: "handle", value: "crash" } }).catch((e: unknown) => e));
    expect(crash.code).toBe(Code.Internal);
    expect(crash.rawMessage).toBe("internal error");
    expect(crash.cause).toBeUndefined();
    expect(crash.message).not.toContain("SELECT");
  });

  it("ends a call at its deadline: the caller gets DeadlineExceeded and the handler's signal aborts", async () => {
    const err = ConnectError.from(await users.getUser({ lookup: { case: "handle", value: "slow" } }, { timeoutMs: 50 }).catch((e: unknown) => e));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(seen.signal?.aborted).toBe(true);
    expect(seen.timeoutMs).toBeGreaterThan(0);
    expect(seen.timeoutMs).toBeLessThanOrEqual(50);
  });

  it("a nested call ends at its caller's deadline with DeadlineExceeded, without a timer of its own", async () => {
    const timers = vi.spyOn(globalThis, "setTimeout");
    try {
      await media.batchGetMedia({ mediaIds: [2n] }, { timeoutMs: 5000 });
      expect(timers.mock.calls.length).toBe(1); // the outer call's deadline only
      expect(seen.timeoutMs).toBeLessThanOrEqual(5000);
    } finally {
      timers.mockRestore();
    }
    const err = ConnectError.from(await media.batchGetMedia({ mediaIds: [1n] }, { timeoutMs: 50 }).catch((e: unknown) => e));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(seen.signal?.aborted).toBe(true);
    // A longer deadline than the caller's still ends at the caller's.
    expect(seen.timeoutMs).toBeLessThanOrEqual(50);
  });

  it("a call made with a signal marked with its deadline (the gateway's lean path) takes it as the handler's, without a timer of its own", async () => {
    const timers = vi.spyOn(globalThis, "setTimeout");
    try {
      const marked = new AbortController();
      markDeadline(marked.signal, Date.now() + 5000);
      await users.getUser({ lookup: { case: "handle", value: "alice" } }, { signal: marked.signal, timeoutMs: 5000 });
      expect(timers.mock.calls.length).toBe(0);
      expect(seen.signal).toBe(marked.signal);
      // Unmarked, the call's deadline needs a timer and a signal of its own.
      const plain = new AbortController();
      await users.getUser({ lookup: { case: "handle", value: "alice" } }, { signal: plain.signal, timeoutMs: 5000 });
      expect(timers.mock.calls.length).toBe(1);
      expect(seen.signal).not.toBe(plain.signal);
    } finally {
      timers.mockRestore();
    }
  });

  it("cancels the handler when the caller aborts", async () => {
    const abort = new AbortController();
    const pending = users.getUser({ lookup: { case: "handle", value: "slow" } }, { signal: abort.signal }).catch((e: unknown) => ConnectError.from(e));
    await new Promise((resolve) => setImmediate(resolve));
    abort.abort();
    const err = await pending;
    expect((err as ConnectError).code).toBe(Code.Canceled);
    expect(seen.signal?.aborted).toBe(true);
    // Already aborted: refused before the handler runs.
    const before = handled;
    const late = await users.getUser({ lookup: { case: "handle", value: "alice" } }, { signal: abort.signal }).catch((e: unknown) => ConnectError.from(e));
    expect((late as ConnectError).code).toBe(Code.Canceled);
    expect(handled).toBe(before);
  });

  it("streams a server stream, and a caller that aborts ends the handler's stream without reading on", async () => {
    const abort = new AbortController();
    const ids: bigint[] = [];
    for await (const res of timeline.streamEvents({}, { signal: abort.signal })) {
      if (res.event.case === "homeTweet") ids.push(res.event.value.tweet!.id);
      if (ids.length === 3) {
        abort.abort();
        break;
      }
    }
    expect(ids).toEqual([1n, 2n, 3n]);
    await vi.waitFor(() => expect(streamClosed).toBe(true));
  });

  it("takes a client stream", async () => {
    async function* parts() {
      yield { part: { case: "metadata" as const, value: { contentType: "image/png", sizeBytes: 15n } } };
      yield { part: { case: "chunk" as const, value: new Uint8Array(10) } };
      yield { part: { case: "chunk" as const, value: new Uint8Array(5) } };
    }
    const res = await media.upload(parts());
    expect(res.media?.sizeBytes).toBe(15n);
  });

  it("observes each call under the hosting service's component", async () => {
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/chirp_rpc_server_duration_seconds_count\{service="UserService",method="GetUser",code="OK",component="user"\} [1-9]/);
    expect(text).toMatch(/chirp_rpc_server_duration_seconds_count\{service="UserService",method="GetUser",code="DeadlineExceeded",component="user"\} 2/); // a call alone and a nested call
    expect(text).toMatch(/chirp_rpc_server_duration_seconds_count\{service="TimelineService",method="StreamEvents",code="Canceled",component="timeline"\} 1/);
  });

  it("holds calls made before every service is registered until open()", async () => {
    const later = new InProcessServices([UserService]);
    const client = createClient(UserService, later.transport());
    let answered = false;
    const pending = client.getUser({ lookup: { case: "userId", value: 1n } }).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(answered).toBe(false);
    later.register(UserService, { getUser: () => ({ user: { id: 1n } }) }, "user", metrics, createLogger("test", "silent")).open();
    expect((await pending).user?.id).toBe(1n);
  });
});
