import { getEventListeners } from "node:events";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { createLogger } from "../logger.js";
import { createMetrics } from "../metrics.js";
import { GrpcServer } from "./grpc-server.js";
import { createGrpcTransport } from "./grpc-transport.js";

// A caller's abort must reach the server whenever it happens, including
// before the call starts: a listener added to an already-aborted signal never
// fires, so such a call would run (a stream: stay open) with nobody waiting.
describe("grpc transport: the caller's signal", () => {
  const server = new GrpcServer({ log: createLogger("test", "silent"), metrics: createMetrics("test") });
  let transport: ReturnType<typeof createGrpcTransport>;
  let calls = 0;
  let open = 0;
  /** When set, StreamEvents ends at once (a stream that finishes by itself). */
  let finite = false;

  beforeAll(async () => {
    server
      .register(UserService, {
        getUser() {
          calls++;
          return {};
        },
      })
      .register(TimelineService, {
        // Sends nothing until the caller goes: a quiet live stream.
        async *streamEvents(_req, ctx) {
          if (finite) return;
          open++;
          try {
            await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
          } finally {
            open--;
          }
        },
      });
    transport = createGrpcTransport({ target: `127.0.0.1:${await server.listen("127.0.0.1", 0)}` });
  });

  afterAll(async () => {
    transport.close();
    await server.close(100);
  });

  it("ends a stream on the server when the caller aborts it", async () => {
    const abort = new AbortController();
    const stream = createClient(TimelineService, transport).streamEvents({}, { signal: abort.signal });
    const done = (async () => {
      for await (const _ of stream) {
        /* nothing comes */
      }
    })().catch((e: unknown) => e);
    await expect.poll(() => open, { timeout: 5000, interval: 10 }).toBe(1);
    abort.abort();
    await expect.poll(() => open, { timeout: 5000, interval: 10 }).toBe(0);
    expect(ConnectError.from(await done).code).toBe(Code.Canceled);
  });

  it("leaves no abort listener on a long-lived signal once its streams have ended", async () => {
    const process_ = new AbortController();
    finite = true;
    try {
      for (let i = 0; i < 5; i++) {
        for await (const _ of createClient(TimelineService, transport).streamEvents({}, { signal: process_.signal })) {
          /* ends at once */
        }
      }
      await expect.poll(() => getEventListeners(process_.signal, "abort").length, { timeout: 5000, interval: 10 }).toBe(0);
    } finally {
      finite = false;
    }
  });

  it("starts no stream for a caller that aborted before the call", async () => {
    const abort = new AbortController();
    abort.abort();
    const err = await transport
      .stream(TimelineService.method.streamEvents, abort.signal, undefined, undefined, (async function* () {
        yield {};
      })())
      .catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Canceled);
    // A stream that did start would be open now (the first test shows it would be seen).
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(open).toBe(0);
  });

  it("sends no unary call for a caller that aborted before it", async () => {
    const abort = new AbortController();
    abort.abort();
    const before = calls;
    const err = await createClient(UserService, transport)
      .getUser({ lookup: { case: "handle", value: "alice" } }, { signal: abort.signal })
      .catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Canceled);
    expect(calls).toBe(before);
  });
});
