// OpenTelemetry traces, off unless configured (config.ts).
//
//   const tracing = startTracing(loadTracingConfig(env, "tweet"), log);
//   ...
//   await tracing.shutdown();   // last, after the servers drained: flushes queued spans
//
// While tracing is off no provider, context manager or exporter exists, and
// every helper below returns at its first line without allocating (no span
// objects, no context switches, no traceparent headers). The call sites check
// for an undefined span, so the cost of the feature when off is one module
// variable read per call.
//
// One trace follows a public request: the gateway's server span, a client
// span per mesh hop and the callee's server span (W3C `traceparent` and
// `tracestate` in gRPC metadata), statements through the shard router, and
// across NATS: an outbox row keeps the writer's trace context among its
// headers, the relay publishes it under a producer span and the durable
// consumers continue it in a consumer span. docs/operations.md, "Tracing",
// lists the spans and attributes.
import {
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  diag,
  DiagLogLevel,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type DiagLogger,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from "@opentelemetry/sdk-trace-base";
import {
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_RPC_METHOD,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_NAMESPACE,
} from "@opentelemetry/semantic-conventions";
import { Code } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import type { TracingConfig } from "./config.js";

export const TRACEPARENT_HEADER = "traceparent";
export const TRACESTATE_HEADER = "tracestate";

/**
 * Attribute names beyond the stable semantic conventions' (messaging and
 * enduser are still "development" there; chirp.* are this project's).
 */
export const ATTR = {
  requestId: "chirp.request_id",
  callerId: "enduser.id",
  shard: "chirp.shard",
  dbRole: "chirp.db.role",
  eventId: "chirp.event_id",
  messagingSystem: "messaging.system",
  messagingDestination: "messaging.destination.name",
  messagingOperationType: "messaging.operation.type",
  messagingOperationName: "messaging.operation.name",
  messagingMessageId: "messaging.message.id",
  messagingConsumerGroup: "messaging.consumer.group.name",
  messagingRedelivery: "chirp.messaging.redelivery_count",
} as const;

let tracer: Tracer | undefined;
const propagator = new W3CTraceContextPropagator();

export interface Tracing {
  readonly enabled: boolean;
  /** Exports what is queued (bounded by `timeoutMs`, default 3000) and stops; later spans are dropped. */
  shutdown(timeoutMs?: number): Promise<void>;
}

/** Whether this process records spans. */
export function tracingOn(): boolean {
  return tracer !== undefined;
}

/**
 * Sets up the tracer provider (batch span processor, OTLP/HTTP exporter with
 * the JSON encoding), the async-local context manager that carries the
 * active span across awaits, and routes the SDK's own warnings to `log`.
 */
export function startTracing(config: TracingConfig, log: Logger, instanceId?: string): Tracing {
  if (!config.enabled) return { enabled: false, shutdown: async () => {} };
  if (tracer !== undefined) throw new Error("tracing is already started in this process");
  diag.setLogger(throttledDiagLogger(log.child({ component: "tracing" })), DiagLogLevel.WARN);
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({
        ...config.resourceAttributes,
        [ATTR_SERVICE_NAME]: config.serviceName,
        [ATTR_SERVICE_NAMESPACE]: config.resourceAttributes[ATTR_SERVICE_NAMESPACE] ?? "chirp",
        [ATTR_SERVICE_INSTANCE_ID]: config.resourceAttributes[ATTR_SERVICE_INSTANCE_ID] ?? instanceId ?? `${process.pid}`,
      }),
    ),
    sampler: samplerOf(config),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: config.endpoint }))],
  });
  trace.setGlobalTracerProvider(provider);
  tracer = provider.getTracer("chirp");
  log.info({ endpoint: config.endpoint, service_name: config.serviceName, sampler: config.sampler }, "tracing on");
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown: (timeoutMs = 3000) => {
      stopped ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), timeoutMs)));
        const result = await Promise.race([provider.shutdown().then(() => "done" as const, () => "failed" as const), late]);
        clearTimeout(timer);
        if (result !== "done") log.warn({ result, endpoint: config.endpoint }, "queued spans may not all have been exported at shutdown");
        tracer = undefined;
        trace.disable();
        context.disable();
        diag.disable();
      })();
      return stopped;
    },
  };
}

function samplerOf(config: TracingConfig): Sampler {
  switch (config.sampler) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(config.samplerRatio);
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.samplerRatio) });
  }
}

/** The SDK reports every failed export; an unreachable collector should say so once a minute, not every batch. */
function throttledDiagLogger(log: Logger): DiagLogger {
  let last = 0;
  const warn = (message: string, ...args: unknown[]): void => {
    const now = Date.now();
    if (now - last < 60_000) return;
    last = now;
    log.warn({ detail: args.map(String).join(" ").slice(0, 500) }, `opentelemetry: ${message}`);
  };
  const quiet = (): void => {};
  return { error: warn, warn, info: quiet, debug: quiet, verbose: quiet };
}

// --- spans -----------------------------------------------------------------

export type RpcSystem = "grpc" | "connectrpc";

export interface RpcSpanInfo {
  readonly system: RpcSystem;
  /** `<package>.<Service>/<Method>`: the span's name. */
  readonly method: string;
  readonly requestId?: string | undefined;
  readonly callerId?: string | undefined;
}

/**
 * A server span for one handled call, child of the trace context in `parent`
 * (incoming request headers) or a new trace without one. Undefined when tracing is off.
 */
export function startServerSpan(info: RpcSpanInfo, parent: Headers | undefined): Span | undefined {
  if (tracer === undefined) return undefined;
  const parentContext = parent === undefined ? ROOT_CONTEXT : extractHeaders(parent);
  return tracer.startSpan(info.method, { kind: SpanKind.SERVER, attributes: rpcAttributes(info) }, parentContext);
}

/** A client span for one outgoing call, child of the active span. Undefined when tracing is off. */
export function startClientSpan(info: RpcSpanInfo): Span | undefined {
  if (tracer === undefined) return undefined;
  return tracer.startSpan(info.method, { kind: SpanKind.CLIENT, attributes: rpcAttributes(info) });
}

function rpcAttributes(info: RpcSpanInfo): Attributes {
  const attributes: Attributes = { [ATTR_RPC_SYSTEM_NAME]: info.system, [ATTR_RPC_METHOD]: info.method };
  if (info.requestId !== undefined) attributes[ATTR.requestId] = info.requestId;
  if (info.callerId !== undefined) attributes[ATTR.callerId] = info.callerId;
  return attributes;
}

/**
 * Ends an RPC span with its outcome: `rpc.status_code` (gRPC's name of the
 * code, OK included) and on failure `error.type` (the Connect code, as on the
 * wire: "not_found"). A client span is an error on any code; a server span
 * only on a server fault, as the gRPC conventions say (a NotFound answer is
 * the server working).
 */
export function endRpcSpan(span: Span, code: Code | undefined, side: "client" | "server", message?: string): void {
  if (code === undefined) {
    span.setAttribute(ATTR_RPC_STATUS_CODE, "OK");
  } else {
    span.setAttribute(ATTR_RPC_STATUS_CODE, grpcCodeName(code));
    span.setAttribute(ATTR_ERROR_TYPE, connectCodeName(code));
    if (side === "client" || isServerFault(code)) span.setStatus({ code: SpanStatusCode.ERROR, ...(message === undefined ? {} : { message }) });
  }
  span.end();
}

/** Runs `fn` with `span` as the active span: spans started inside are its children, and outgoing calls carry it. */
export function runInSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/**
 * The active trace context, kept for later: `within(fn)` runs `fn` in it. For
 * work one caller hands to a batch that runs in another's context (the outbox
 * rows it writes then carry their own caller's trace). Identity when tracing
 * is off or nothing is being traced.
 */
export function keepTraceContext(): <T>(fn: () => T) => T {
  if (tracer === undefined) return runNow;
  const kept = context.active();
  if (trace.getSpan(kept) === undefined) return runNow;
  return (fn) => context.with(kept, fn);
}
const runNow = <T>(fn: () => T): T => fn();

/** Adds attributes to the active span, if any (a no-op when tracing is off). */
export function annotateActiveSpan(attributes: Attributes): void {
  if (tracer === undefined) return;
  trace.getActiveSpan()?.setAttributes(attributes);
}

/**
 * A span for one statement through the shard router: only as a child of an
 * active span, so background loops (the relay's polling, health checks) do
 * not start a trace per statement.
 */
export function startDbSpan(shard: string, database: string, sql: string): Span | undefined {
  if (tracer === undefined) return undefined;
  if (trace.getSpan(context.active()) === undefined) return undefined;
  const operation = /^\s*([A-Za-z]+)/.exec(sql)?.[1]?.toUpperCase() ?? "SQL";
  return tracer.startSpan(`${operation} ${shard}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      [ATTR_DB_SYSTEM_NAME]: "mysql",
      [ATTR_DB_NAMESPACE]: database,
      [ATTR_DB_OPERATION_NAME]: operation,
      // Prepared statements: placeholders, never the values.
      [ATTR_DB_QUERY_TEXT]: sql,
      [ATTR.shard]: shard,
    },
  });
}

export function endDbSpan(span: Span, role: string, code: Code | undefined): void {
  span.setAttribute(ATTR.dbRole, role);
  if (code !== undefined) {
    span.setAttribute(ATTR_ERROR_TYPE, connectCodeName(code));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

// --- NATS ------------------------------------------------------------------

export interface MessageSpanInfo {
  readonly subject: string;
  readonly eventId: string | undefined;
  readonly requestId: string | undefined;
}

/**
 * The relay's span for publishing one outbox row, child of the trace context
 * stored with the row. Undefined when tracing is off or the row has none
 * (written while its writer did not trace): the relay starts no trace of its own.
 */
export function startPublishSpan(stored: Readonly<Record<string, string>>, info: MessageSpanInfo): Span | undefined {
  if (tracer === undefined || stored[TRACEPARENT_HEADER] === undefined) return undefined;
  const parent = propagator.extract(ROOT_CONTEXT, stored, defaultTextMapGetter);
  if (trace.getSpan(parent) === undefined) return undefined;
  return tracer.startSpan(
    `publish ${info.subject}`,
    { kind: SpanKind.PRODUCER, attributes: messageAttributes(info, "send", "publish") },
    parent,
  );
}

/**
 * A durable consumer's span for handling one event: child of the context in
 * the message's headers (so the write, the publish and every consumer's work
 * share one trace), or a new trace for an event that carries none.
 */
export function startConsumerSpan(
  headers: Readonly<Record<string, string>>,
  info: MessageSpanInfo & { readonly durable: string; readonly redeliveryCount: number },
): Span | undefined {
  if (tracer === undefined) return undefined;
  const parent = headers[TRACEPARENT_HEADER] === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
  const attributes = messageAttributes(info, "process", "process");
  attributes[ATTR.messagingConsumerGroup] = info.durable;
  if (info.redeliveryCount > 0) attributes[ATTR.messagingRedelivery] = info.redeliveryCount;
  return tracer.startSpan(`process ${info.subject}`, { kind: SpanKind.CONSUMER, attributes }, parent);
}

function messageAttributes(info: MessageSpanInfo, type: string, name: string): Attributes {
  const attributes: Attributes = {
    [ATTR.messagingSystem]: "nats",
    [ATTR.messagingDestination]: info.subject,
    [ATTR.messagingOperationType]: type,
    [ATTR.messagingOperationName]: name,
  };
  if (info.eventId !== undefined) {
    attributes[ATTR.messagingMessageId] = info.eventId;
    attributes[ATTR.eventId] = info.eventId;
  }
  if (info.requestId !== undefined) attributes[ATTR.requestId] = info.requestId;
  return attributes;
}

/** Ends a messaging span; `err` marks it failed (the event is retried or dead-lettered). */
export function endMessageSpan(span: Span, err?: unknown, outcome?: string): void {
  if (outcome !== undefined) span.setAttribute("chirp.messaging.outcome", outcome);
  if (err !== undefined) {
    span.setAttribute(ATTR_ERROR_TYPE, err instanceof Error ? err.name : "error");
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message.slice(0, 200) : String(err).slice(0, 200) });
  }
  span.end();
}

// --- propagation -----------------------------------------------------------

/** Writes `span`'s context as traceparent (and tracestate) through `set`. */
export function injectSpan(span: Span, set: (key: string, value: string) => void): void {
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  for (const [k, v] of Object.entries(carrier)) set(k, v);
}

/**
 * The active trace context as headers ({ traceparent, tracestate? }), for an
 * outbox row written on behalf of the current request; undefined when tracing
 * is off or nothing is being traced.
 */
export function activeTraceHeaders(): Record<string, string> | undefined {
  if (tracer === undefined) return undefined;
  const active = context.active();
  if (trace.getSpan(active) === undefined) return undefined;
  const carrier: Record<string, string> = {};
  propagator.inject(active, carrier, defaultTextMapSetter);
  return carrier[TRACEPARENT_HEADER] === undefined ? undefined : carrier;
}

function extractHeaders(headers: Headers): Context {
  if (!headers.has(TRACEPARENT_HEADER)) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, headers, {
    keys: (h) => [...h.keys()],
    get: (h, key) => h.get(key) ?? undefined,
  });
}

// --- codes -----------------------------------------------------------------

function isServerFault(code: Code): boolean {
  return code === Code.Internal || code === Code.Unknown || code === Code.Unavailable || code === Code.DataLoss || code === Code.DeadlineExceeded || code === Code.Unimplemented;
}

/** "NOT_FOUND": gRPC's spelling, which `rpc.status_code` uses. Connect's codes are gRPC's numbers. */
function grpcCodeName(code: Code): string {
  return GRPC_NAMES[code] ?? String(code);
}

/** "not_found": the Connect protocol's spelling, as clients see it. */
function connectCodeName(code: Code): string {
  return (GRPC_NAMES[code] ?? "unknown").toLowerCase().replace("cancelled", "canceled");
}

const GRPC_NAMES: Readonly<Record<number, string>> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};
