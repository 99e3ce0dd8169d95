import { create, isMessage, type DescMessage, type DescMethodStreaming, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import type { Span } from "@opentelemetry/api";
import type { Metrics } from "../metrics.js";
import { endRpcSpan, injectSpan, startClientSpan, tracingOn } from "../tracing/tracing.js";
import { grpcMethodDefinition, grpcMethodPath } from "./grpc-definition.js";
import { unrepeatableMethods } from "./unrepeatable.js";
import { CALLER_ID_HEADER, REQUEST_ID_HEADER, headersToMetadata, metadataToHeaders, type HeadersInit } from "./metadata.js";

export interface GrpcTransportOptions {
  /**
   * One address ("127.0.0.1:50051") or several, comma-separated: calls are
   * balanced round-robin over every instance that is up.
   */
  readonly target: string;
  /** Applied when the caller gives no timeout of its own. */
  readonly defaultTimeoutMs?: number;
  readonly metrics?: Metrics;
}

/**
 * A connect-es Transport carried by @grpc/grpc-js. Callers get the ordinary
 * typed `createClient(Service, transport)` surface, while the wire work is
 * grpc-js's (cheaper per call than connect-node's gRPC client on this stack).
 */
export function createGrpcTransport(options: GrpcTransportOptions): Transport & { close(): void } {
  const client = new grpc.Client(grpcTarget(options.target), grpc.credentials.createInsecure(), {
    ...meshChannelOptions(),
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
  });
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 10_000;

  function callOptions(signal: AbortSignal | undefined, timeoutMs: number | undefined): grpc.CallOptions {
    const ms = timeoutMs ?? defaultTimeoutMs;
    return ms > 0 ? { deadline: Date.now() + ms } : {};
  }

  /** Per method and code, the client duration metric's child, made once (prom-client hashes a label object on every startTimer). */
  const durations = new Map<string, Map<string, { observe(seconds: number): void }>>();
  function durationOf(method: { name: string; parent: { name: string } }, code: string): { observe(seconds: number): void } {
    const metrics = options.metrics!;
    const key = `${method.parent.name}/${method.name}`;
    let byCode = durations.get(key);
    if (byCode === undefined) durations.set(key, (byCode = new Map()));
    let child = byCode.get(code);
    if (child === undefined) {
      child = metrics.rpcClientDuration.labels({ service: method.parent.name, method: method.name, code, component: metrics.component });
      byCode.set(code, child);
    }
    return child;
  }

  function timed<T>(method: { name: string; parent: { name: string } }, run: () => Promise<T>): Promise<T> {
    if (options.metrics === undefined) return run();
    const started = performance.now();
    return run().then(
      (value) => {
        durationOf(method, "OK").observe((performance.now() - started) / 1000);
        return value;
      },
      (err: ConnectError) => {
        durationOf(method, Code[err.code]).observe((performance.now() - started) / 1000);
        throw err;
      },
    );
  }

  return {
    close: () => client.close(),

    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ReturnType<typeof createContextValues>,
    ): Promise<UnaryResponse<I, O>> {
      const def = grpcMethodDefinition(method);
      const message = normalize(method.input, input);
      return timed(method, () =>
        new Promise<UnaryResponse<I, O>>((resolve, reject) => {
          if (gone(signal)) return reject(canceled());
          let responseMetadata: grpc.Metadata | undefined;
          const metadata = headersToMetadata(header);
          const span = clientSpan(method, metadata);
          const call = client.makeUnaryRequest<MessageShape<I>, MessageShape<O>>(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            message,
            metadata,
            callOptions(signal, timeoutMs),
            (err, output) => {
              signal?.removeEventListener("abort", cancel);
              if (err) return reject(endSpan(span, fromServiceError(err)));
              endSpan(span);
              if (output === undefined) return reject(new ConnectError("empty response", Code.Internal));
              // Headers made only if the caller reads them (a client reads them only for onHeader or onTrailer).
              const received = responseMetadata;
              let header: Headers | undefined;
              let trailer: Headers | undefined;
              resolve({
                stream: false,
                service: method.parent,
                method,
                get header() {
                  return (header ??= received === undefined ? new Headers() : metadataToHeaders(received));
                },
                message: output,
                get trailer() {
                  return (trailer ??= new Headers());
                },
              });
            },
          );
          const cancel = (): void => call.cancel();
          signal?.addEventListener("abort", cancel, { once: true });
          call.on("metadata", (m: grpc.Metadata) => {
            responseMetadata = m;
          });
        }),
      );
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      // An abort listener added to an aborted signal never fires: the call would never be cancelled.
      if (gone(signal)) throw canceled();
      const def = grpcMethodDefinition(method);
      const metadata = headersToMetadata(header);
      const span = clientSpan(method, metadata);
      // Streams (live events, uploads) may legitimately last longer than a unary deadline.
      const opts: grpc.CallOptions = timeoutMs !== undefined && timeoutMs > 0 ? { deadline: Date.now() + timeoutMs } : {};
      const base = { stream: true as const, service: method.parent, method, header: new Headers(), trailer: new Headers() };

      if (method.methodKind === "client_streaming") {
        const message = await timed(method, async () => {
          const pending = new Promise<MessageShape<O>>((resolve, reject) => {
            const call = client.makeClientStreamRequest<MessageShape<I>, MessageShape<O>>(
              def.path,
              def.requestSerialize,
              def.responseDeserialize,
              metadata,
              opts,
              (err, output) => {
                release();
                if (err) return reject(endSpan(span, fromServiceError(err)));
                if (output === undefined) return reject(endSpan(span, new ConnectError("empty response", Code.Internal)));
                endSpan(span);
                resolve(output);
              },
            );
            const release = cancelOnAbort(signal, call);
            pumpInto(call, method.input, input).catch((err: unknown) => {
              call.cancel();
              reject(endSpan(span, err instanceof ConnectError ? err : new ConnectError("request stream failed", Code.Canceled, undefined, undefined, err)));
            });
          });
          return pending;
        });
        return { ...base, message: single(message) };
      }

      if (method.methodKind === "server_streaming") {
        let first: MessageInitShape<I> | undefined;
        for await (const m of input) {
          first = m;
          break;
        }
        if (first === undefined) throw endSpan(span, new ConnectError("missing request message", Code.InvalidArgument));
        // The request was read in the meantime.
        if (gone(signal)) throw endSpan(span, canceled());
        const call = client.makeServerStreamRequest<MessageShape<I>, MessageShape<O>>(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          normalize(method.input, first),
          metadata,
          opts,
        );
        cancelOnAbort(signal, call);
        return { ...base, message: readAll<O>(call, span) };
      }

      const call = client.makeBidiStreamRequest<MessageShape<I>, MessageShape<O>>(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        metadata,
        opts,
      );
      cancelOnAbort(signal, call);
      pumpInto(call, method.input, input).catch(() => call.cancel());
      return { ...base, message: readAll<O>(call, span) };
    },
  };
}

/**
 * Cancels `call` when `signal` aborts, for as long as the call runs: the
 * listener goes when the call ends ('status'), so a long-lived signal (a
 * stream's, a process's) does not collect one per call. Returns the release.
 */
function cancelOnAbort(signal: AbortSignal | undefined, call: { cancel(): void; on(event: "status", listener: () => void): unknown }): () => void {
  if (signal === undefined) return () => {};
  const cancel = (): void => call.cancel();
  const release = (): void => signal.removeEventListener("abort", cancel);
  signal.addEventListener("abort", cancel, { once: true });
  call.on("status", release);
  return release;
}

/**
 * How every mesh client reaches a service's instances: round-robin over all
 * that are up, and a call answered UNAVAILABLE is tried again (at most
 * MESH_RETRY_ATTEMPTS in all, within the call's one deadline). round_robin
 * picks the next instance for each attempt, so the retry lands on another
 * instance when there is one. Nothing else is retried: any other code may
 * come from a call that did its work, and only the caller knows whether
 * repeating it is safe. UNAVAILABLE means the instance did not take the call
 * on (stopped, draining, or its own dependency was down before it started),
 * or that its connection broke mid-call: so the retry applies only to methods
 * the protos declare safe to repeat (see unrepeatable.ts); the others get
 * grpc-js's transparent retry of calls that never reached a service's code.
 * Retry throttling (per client): each UNAVAILABLE costs a token, each OK call
 * earns one back, and retries stop while fewer than half of the 10 remain. One
 * bad instance among good ones keeps the balance (its failures are paid back
 * by the retries that succeed elsewhere); when every instance fails, retries
 * stop after a few calls, so an outage does not triple the load on them.
 */
export const MESH_RETRY_ATTEMPTS = 3;

export function meshServiceConfig(): Record<string, unknown> {
  return {
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig: [
      {
        // An empty name entry matches every method of every service.
        name: [{}],
        retryPolicy: {
          maxAttempts: MESH_RETRY_ATTEMPTS,
          initialBackoff: "0.02s",
          maxBackoff: "0.2s",
          backoffMultiplier: 2,
          retryableStatusCodes: ["UNAVAILABLE"],
        },
      },
      // A named method is more specific than the empty name: these get no retry policy.
      { name: unrepeatableMethods() },
    ],
    retryThrottling: { maxTokens: 10, tokenRatio: 1 },
  };
}

/** Channel options of every mesh client (grpc-transport.ts and the gateway's media edge). */
export function meshChannelOptions(): grpc.ChannelOptions {
  return {
    "grpc.service_config": JSON.stringify(meshServiceConfig()),
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
  };
}

/** "a:1,b:2" becomes a static ipv4 target; anything with a scheme ("dns:///svc:50051") passes through. */
export function grpcTarget(target: string): string {
  if (target.includes("://") || /^[a-z0-9]+:[^0-9]/i.test(target) || target.startsWith("unix:")) return target;
  return target.includes(",") ? `ipv4:${target}` : target;
}

/**
 * The client span of one outgoing call (undefined when tracing is off), its
 * context added to the call's metadata for the callee's server span.
 */
function clientSpan(method: { name: string; parent: { typeName: string } }, metadata: grpc.Metadata): Span | undefined {
  if (!tracingOn()) return undefined;
  const span = startClientSpan({
    system: "grpc",
    method: `${method.parent.typeName}/${method.name}`,
    requestId: metadataValue(metadata, REQUEST_ID_HEADER),
    callerId: metadataValue(metadata, CALLER_ID_HEADER),
  });
  if (span !== undefined) injectSpan(span, (key, value) => metadata.set(key, value));
  return span;
}

function metadataValue(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

/** Ends the span (if any) with the error's code, or OK without one; returns the error for `throw`/`reject`. */
function endSpan(span: Span | undefined): void;
function endSpan(span: Span | undefined, err: ConnectError): ConnectError;
function endSpan(span: Span | undefined, err?: ConnectError): ConnectError | void {
  if (span !== undefined && span.isRecording()) endRpcSpan(span, err?.code, "client", err?.rawMessage);
  return err;
}

function normalize<D extends DescMessage>(schema: D, value: MessageInitShape<D>): MessageShape<D> {
  return isMessage(value, schema) ? value : create(schema, value);
}

async function pumpInto<D extends DescMessage>(
  call: grpc.ClientWritableStream<MessageShape<D>> | grpc.ClientDuplexStream<MessageShape<D>, unknown>,
  schema: D,
  input: AsyncIterable<MessageInitShape<D>>,
): Promise<void> {
  for await (const m of input) {
    if (!call.write(normalize(schema, m))) {
      await new Promise<void>((resolve) => call.once("drain", resolve));
    }
  }
  call.end();
}

async function* readAll<O extends DescMessage>(
  call: grpc.ClientReadableStream<MessageShape<O>> | grpc.ClientDuplexStream<unknown, MessageShape<O>>,
  span: Span | undefined,
): AsyncIterable<MessageShape<O>> {
  try {
    for await (const m of call as AsyncIterable<MessageShape<O>>) yield m;
    endSpan(span);
  } catch (err) {
    throw endSpan(span, fromServiceError(err as grpc.ServiceError));
  } finally {
    // A consumer that stopped early (return()) leaves the span open until here.
    if (span?.isRecording() === true) endSpan(span, new ConnectError("stream abandoned by the caller", Code.Canceled));
    // A consumer that stops early must not leave the HTTP/2 stream open.
    call.cancel();
  }
}

async function* single<T>(value: T): AsyncIterable<T> {
  yield value;
}

/** Whether the caller has given up (checked before a call starts: an abort listener added later would never fire). */
function gone(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** What a call whose caller gave up before it started answers, as grpc-js answers a cancelled one. */
function canceled(): ConnectError {
  return new ConnectError("call cancelled by the caller", Code.Canceled);
}

export function fromServiceError(err: grpc.ServiceError | Error): ConnectError {
  if (err instanceof ConnectError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code !== "number") return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
  const code = e.code === grpc.status.OK ? Code.Internal : (e.code as number as Code);
  return new ConnectError(e.details ?? "", code, e.metadata ? metadataToHeaders(e.metadata) : undefined, undefined, err);
}
