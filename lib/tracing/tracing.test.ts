// Tracing over a real loopback gRPC hop (grpc-js server and transport) and a
// real OTLP/HTTP receiver: off, nothing is made, sent or added to a call; on,
// a call's spans share one trace and arrive at the receiver.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserSchema } from "../../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { startOtlpReceiver, SPAN_KIND, type OtlpReceiver } from "../../test/support/otlp-receiver.js";
import { createLogger } from "../logger.js";
import { createMetrics } from "../metrics.js";
import { GrpcServer } from "../rpc/grpc-server.js";
import { createGrpcTransport } from "../rpc/grpc-transport.js";
import { REQUEST_ID_HEADER } from "../rpc/metadata.js";
import { observeCall } from "../rpc/observe.js";
import { loadTracingConfig } from "./config.js";
import { activeTraceHeaders, startClientSpan, startTracing, tracingOn, TRACEPARENT_HEADER } from "./tracing.js";

const log = createLogger("test", "silent");
const metrics = createMetrics("test");

let receiver: OtlpReceiver;
let server: GrpcServer;
let transport: ReturnType<typeof createGrpcTransport>;
/** What the handler saw on its last call. */
let seen: { traceparent: string | null; activeSpan: boolean; outboxHeaders: Record<string, string> | undefined } | undefined;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  server = new GrpcServer({ log, metrics }).register(UserService, {
    getUser(req, ctx) {
      seen = {
        traceparent: ctx.requestHeader.get(TRACEPARENT_HEADER),
        activeSpan: trace.getActiveSpan() !== undefined,
        outboxHeaders: activeTraceHeaders(),
      };
      if (req.lookup.case === "handle" && req.lookup.value === "nobody") throw new ConnectError("no such user", Code.NotFound);
      return { user: create(UserSchema, { id: 42n, handle: "alice" }) };
    },
  });
  const port = await server.listen("127.0.0.1", 0);
  transport = createGrpcTransport({ target: `127.0.0.1:${port}` });
});

afterAll(async () => {
  transport?.close();
  await server?.close(0);
  await receiver?.close();
});

/** A public call as the gateway makes it: a root server span around the mesh hop. */
function publicCall(handle: string, requestId: string): Promise<unknown> {
  const users = createClient(UserService, transport);
  const headers = new Headers({ [REQUEST_ID_HEADER]: requestId });
  return observeCall(
    metrics,
    log,
    {
      service: "UserService",
      method: "GetUser",
      requestId,
      trace: tracingOn() ? { system: "connectrpc", method: "chirp.user.v1.UserService/GetUser", requestId, callerId: "7" } : undefined,
    },
    () => users.getUser({ lookup: { case: "handle", value: handle } }, { headers }),
  );
}

describe("tracing off", () => {
  it("is off without an endpoint, and when switched off with one", () => {
    expect(loadTracingConfig({}, "user").enabled).toBe(false);
    expect(loadTracingConfig({ CHIRP_TRACING: "off", OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, "user").enabled).toBe(false);
    expect(loadTracingConfig({ OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, "user").enabled).toBe(false);
  });

  it("makes no spans, adds no traceparent to a call and exports nothing", async () => {
    const tracing = startTracing(loadTracingConfig({ CHIRP_TRACING: "off", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url }, "test"), log);
    expect(tracing.enabled).toBe(false);
    expect(tracingOn()).toBe(false);
    // No SDK is registered: the API hands out its no-op tracer, whose spans record nothing.
    expect(trace.getTracer("chirp").startSpan("probe").isRecording()).toBe(false);
    expect(startClientSpan({ system: "grpc", method: "x.Y/Z" })).toBeUndefined();

    await publicCall("alice", "req-off");
    expect(seen).toEqual({ traceparent: null, activeSpan: false, outboxHeaders: undefined });
    await expect(publicCall("nobody", "req-off-2")).rejects.toMatchObject({ code: Code.NotFound });
    await tracing.shutdown();
    expect(receiver.requests).toBe(0);
    expect(receiver.spans).toHaveLength(0);
  });
});

describe("tracing on", () => {
  it("exports one trace per public call: the root, the mesh client span and the callee's server span", async () => {
    const config = loadTracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: "unit" }, "test");
    expect(config).toMatchObject({ enabled: true, endpoint: receiver.url, serviceName: "unit", sampler: "parentbased_always_on" });
    const tracing = startTracing(config, log);
    try {
      await publicCall("alice", "req-on");
      expect(seen?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(seen?.activeSpan).toBe(true);
      // What appendOutbox stores with a row written by this handler: the handler's own span.
      expect(seen?.outboxHeaders?.[TRACEPARENT_HEADER]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      await expect(publicCall("nobody", "req-on-2")).rejects.toMatchObject({ code: Code.NotFound });
    } finally {
      // Flushes the batch processor: everything ended so far is posted before this resolves.
      await tracing.shutdown();
    }
    expect(tracingOn()).toBe(false);

    const byRequest = (id: string) => receiver.spans.filter((s) => s.attributes["chirp.request_id"] === id);
    const ok = byRequest("req-on");
    const root = ok.find((s) => s.kind === SPAN_KIND.server && s.attributes["rpc.system.name"] === "connectrpc");
    const client = ok.find((s) => s.kind === SPAN_KIND.client);
    const callee = ok.find((s) => s.kind === SPAN_KIND.server && s.attributes["rpc.system.name"] === "grpc");
    expect(root).toMatchObject({ name: "chirp.user.v1.UserService/GetUser", parentSpanId: "", service: "unit" });
    expect(root?.attributes).toMatchObject({ "enduser.id": "7", "rpc.status_code": "OK" });
    expect(client).toMatchObject({ traceId: root?.traceId, parentSpanId: root?.spanId });
    expect(callee).toMatchObject({ traceId: root?.traceId, parentSpanId: client?.spanId });
    expect(seen?.outboxHeaders).toBeDefined();

    // NotFound: an error for the caller's client span, the server doing its job for the server spans.
    const failed = byRequest("req-on-2");
    expect(failed).toHaveLength(3);
    expect(new Set(failed.map((s) => s.traceId)).size).toBe(1);
    const failedClient = failed.find((s) => s.kind === SPAN_KIND.client);
    expect(failedClient?.attributes).toMatchObject({ "rpc.status_code": "NOT_FOUND", "error.type": "not_found" });
    expect(failedClient?.statusCode).toBe(2);
    for (const s of failed.filter((x) => x.kind === SPAN_KIND.server)) expect(s.statusCode).not.toBe(2);
  });
});

describe("loadTracingConfig", () => {
  it("reads the standard variables and reports every problem at once", () => {
    expect(loadTracingConfig({ CHIRP_TRACING: "on" }, "tweet")).toMatchObject({
      enabled: true,
      endpoint: "http://localhost:4318/v1/traces",
      serviceName: "chirp-tweet",
    });
    expect(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }, "tweet").endpoint).toBe("http://collector:4318/v1/traces");
    expect(
      loadTracingConfig(
        { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/", OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25", OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=prod,team=a%20b" },
        "user",
      ),
    ).toMatchObject({ endpoint: "http://c:4318/v1/traces", sampler: "parentbased_traceidratio", samplerRatio: 0.25, resourceAttributes: { "deployment.environment.name": "prod", team: "a b" } });
    expect(() =>
      loadTracingConfig({ CHIRP_TRACING: "yes", OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "2", OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, "user"),
    ).toThrow(/CHIRP_TRACING[\s\S]*OTEL_TRACES_SAMPLER_ARG[\s\S]*OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
});
