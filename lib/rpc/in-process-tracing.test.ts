// Traces through the in-process transport: a handler runs inside its call's
// server span, so what it does (a statement, a call it makes) is a child of
// that span. Unary handlers always did; this covers server streams, whose
// handler runs each time the caller pulls the next message.
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver } from "../../test/support/otlp-receiver.js";
import { createLogger } from "../logger.js";
import { createMetrics } from "../metrics.js";
import { endDbSpan, startDbSpan, startTracing, type Tracing } from "../tracing/tracing.js";
import { InProcessServices } from "./in-process.js";

describe("in-process transport, traced", () => {
  let receiver: OtlpReceiver;
  let tracing: Tracing;
  let previousDelay: string | undefined;
  const services = new InProcessServices([TimelineService]);

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // The batch processor reads this when tracing starts; put back after.
    previousDelay = process.env.OTEL_BSP_SCHEDULE_DELAY;
    process.env.OTEL_BSP_SCHEDULE_DELAY = "20";
    const log = createLogger("test", "silent");
    tracing = startTracing({ enabled: true, endpoint: receiver.url, serviceName: "chirp-test", resourceAttributes: {}, sampler: "always_on", samplerRatio: 1 }, log);
    services
      .register(
        TimelineService,
        {
          async *streamEvents() {
            for (let i = 1; i <= 2; i++) {
              // As a store's statement would: a child of whatever span is active.
              const span = startDbSpan("-80", "chirp_x", `SELECT ${i}`);
              if (span !== undefined) endDbSpan(span, "primary", undefined);
              yield { event: { case: "homeTweet", value: { tweet: { id: BigInt(i) } } } };
            }
          },
        },
        "timeline",
        createMetrics("all"),
        log,
      )
      .open();
  });

  afterAll(async () => {
    await tracing?.shutdown();
    await receiver?.close();
    if (previousDelay === undefined) delete process.env.OTEL_BSP_SCHEDULE_DELAY;
    else process.env.OTEL_BSP_SCHEDULE_DELAY = previousDelay;
  });

  it("runs a server stream's handler inside the stream's server span", async () => {
    const timeline = createClient(TimelineService, services.transport());
    let n = 0;
    for await (const _ of timeline.streamEvents({})) n++;
    expect(n).toBe(2);
    const { server, statements } = await receiver.waitFor("the stream's server span and both statements", (spans) => {
      const server = spans.find((s) => s.kind === SPAN_KIND.server && s.name.endsWith("StreamEvents"));
      const statements = spans.filter((s) => s.name.startsWith("SELECT"));
      return server !== undefined && statements.length === 2 ? { server, statements } : undefined;
    });
    for (const s of statements) expect([s.traceId, s.parentSpanId]).toEqual([server.traceId, server.spanId]);
  });
});
