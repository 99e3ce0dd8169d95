// Calls between services that run in the same process (`--target all`):
// a connect-es Transport that hands the request message to the handler and
// the response back, with no encoding, no socket and no HTTP/2 framing, but
// with every contract a gRPC hop keeps:
//
//   - the request is validated against the proto's rules before the handler
//     runs, and a handler's partial answer becomes a full message;
//   - deadlines: the caller's timeout is the handler's `ctx.timeoutMs()`, its
//     signal aborts at the deadline, and the caller gets DeadlineExceeded then
//     even if the handler has not noticed;
//   - the caller's abort signal cancels the handler;
//   - caller identity and request id travel as request headers, as on the wire,
//     and the caller is admitted exactly as GrpcServer admits it (callers.ts:
//     only a verified assertion sets it);
//   - errors are mapped and masked exactly as GrpcServer does (observeCall),
//     and the caller receives what a wire hop would have carried: the code,
//     the message and the metadata, never the server-side cause;
//   - per-method server metrics (`component` = the hosting service), the
//     access log, and a server span continuing the caller's trace.
//
// Messages are passed by reference, not copied: a handler must not change a
// request it was given, nor a caller a response it received. (Handlers
// build their responses fresh; caches hand out their own copies.)
import { create, isMessage, type DescMessage, type DescMethod, type DescMethodStreaming, type DescMethodUnary, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createServiceImplSpec,
  type ContextValues,
  type HandlerContext,
  type MethodImplSpec,
  type ServiceImpl,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import { componentMetrics, type Metrics } from "../metrics.js";
import { injectSpan, startClientSpan, endRpcSpan, tracingOn } from "../tracing/tracing.js";
import { createCallerCheck, type CallerCheck } from "./callers.js";
import { CALLER_ID_HEADER, REQUEST_ID_HEADER, type HeadersInit } from "./metadata.js";
import { context, type Context } from "@opentelemetry/api";
import { observeCall, type CallInfo } from "./observe.js";
import { validateRequest } from "./validation.js";

interface Hosted {
  readonly spec: MethodImplSpec;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly url: string;
}

/**
 * The services this process hosts, callable in-process. Named up front (so
 * clients made early already call in-process), then each registers its
 * implementation, then open(): calls made before (by a consumer starting up
 * while the next service's context is still being built) wait for it.
 */
export class InProcessServices {
  private readonly methods = new Map<DescMethod, Hosted>();
  private readonly names: ReadonlySet<string>;
  private opened!: () => void;
  private readonly ready = new Promise<void>((resolve) => (this.opened = resolve));
  private isOpen = false;
  private readonly callers: CallerCheck;

  /** `callers`: admits each call's caller (default: anonymous calls only, as a process with no mesh key). */
  constructor(services: readonly DescService[], callers?: CallerCheck) {
    this.names = new Set(services.map((s) => s.typeName));
    this.callers = callers ?? createCallerCheck(undefined);
  }

  /**
   * `component` labels the calls' metrics (the service's name: "tweet"),
   * `log` gets their access log.
   */
  register<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>, component: string, metrics: Metrics, log: Logger): this {
    if (!this.names.has(service.typeName)) throw new Error(`${service.typeName} was not named when this process's services were`);
    const spec = createServiceImplSpec(service, impl);
    const labelled = componentMetrics(metrics, component);
    for (const method of service.methods) {
      this.methods.set(method, { spec: spec.methods[method.localName]!, metrics: labelled, log, url: `/${service.typeName}/${method.name}` });
    }
    return this;
  }

  /** Whether `service` runs here (its calls then go through transport()). */
  hosts(service: DescService): boolean {
    return this.names.has(service.typeName);
  }

  /** Every service is registered: calls waiting for one go ahead. */
  open(): void {
    this.isOpen = true;
    this.opened();
  }

  /** A Transport reaching every registered service. */
  transport(): Transport {
    return {
      unary: (method, signal, timeoutMs, header, input, contextValues) => this.unary(method, signal, timeoutMs, header, input, contextValues),
      stream: (method, signal, timeoutMs, header, input, contextValues) => this.stream(method, signal, timeoutMs, header, input, contextValues),
    };
  }

  private async hosted(method: DescMethod): Promise<Hosted> {
    if (!this.isOpen) await this.ready;
    const hosted = this.methods.get(method);
    if (hosted === undefined) throw new ConnectError(`${method.parent.typeName} does not run in this process`, Code.Unimplemented);
    return hosted;
  }

  private async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues: ContextValues | undefined,
  ): Promise<UnaryResponse<I, O>> {
    const hosted = await this.hosted(method);
    const call = new InProcessCall(hosted, method, signal, timeoutMs, header, contextValues, this.callers);
    try {
      const request = normalize(method.input, input);
      const message = await call.run(async () => {
        call.admitted();
        validateRequest(method.input, request);
        return normalize(method.output, await (hosted.spec.impl as unknown as UnaryImpl<I, O>)(request, call.ctx));
      });
      // Headers made only if the caller reads them (a client reads them only for onHeader or onTrailer).
      const { ctx } = call;
      return {
        stream: false,
        service: method.parent,
        method,
        get header() {
          return ctx.responseHeader;
        },
        message,
        get trailer() {
          return ctx.responseTrailer;
        },
      };
    } finally {
      call.end();
    }
  }

  private async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues: ContextValues | undefined,
  ): Promise<StreamResponse<I, O>> {
    const hosted = await this.hosted(method);
    const call = new InProcessCall(hosted, method, signal, timeoutMs, header, contextValues, this.callers);
    const base = { stream: true as const, service: method.parent, method, header: call.ctx.responseHeader, trailer: call.ctx.responseTrailer };
    switch (method.methodKind) {
      case "client_streaming": {
        try {
          const message = await call.run(async () => {
            call.admitted();
            return normalize(method.output, await (hosted.spec.impl as unknown as ClientStreamImpl<I, O>)(validated(method.input, input), call.ctx));
          });
          return { ...base, message: single(message) };
        } finally {
          call.end();
        }
      }
      case "server_streaming": {
        let first: MessageInitShape<I> | undefined;
        try {
          for await (const m of input) {
            first = m;
            break;
          }
        } catch (err) {
          call.end();
          throw err;
        }
        if (first === undefined) {
          call.end();
          throw new ConnectError("missing request message", Code.InvalidArgument);
        }
        const request = normalize(method.input, first);
        return {
          ...base,
          message: call.serveStream(method.output, () => {
            call.admitted();
            validateRequest(method.input, request);
            return (hosted.spec.impl as unknown as ServerStreamImpl<I, O>)(request, call.ctx);
          }),
        };
      }
      default:
        return {
          ...base,
          message: call.serveStream(method.output, () => {
            call.admitted();
            return (hosted.spec.impl as unknown as BidiImpl<I, O>)(validated(method.input, input), call.ctx);
          }),
        };
    }
  }
}

type UnaryImpl<I extends DescMessage, O extends DescMessage> = (req: MessageShape<I>, ctx: HandlerContext) => Promise<MessageInitShape<O>> | MessageInitShape<O>;
type ClientStreamImpl<I extends DescMessage, O extends DescMessage> = (req: AsyncIterable<MessageShape<I>>, ctx: HandlerContext) => Promise<MessageInitShape<O>>;
type ServerStreamImpl<I extends DescMessage, O extends DescMessage> = (req: MessageShape<I>, ctx: HandlerContext) => AsyncIterable<MessageInitShape<O>>;
type BidiImpl<I extends DescMessage, O extends DescMessage> = (req: AsyncIterable<MessageShape<I>>, ctx: HandlerContext) => AsyncIterable<MessageInitShape<O>>;

/**
 * One call in flight: its handler context (headers made only when used),
 * the signal that ends it (the caller's abort, the deadline, the end of the
 * call), and its observation.
 */
class InProcessCall {
  readonly ctx: HandlerContext;
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly callerSignal: AbortSignal | undefined;
  private readonly onCallerAbort: (() => void) | undefined;
  private readonly deadline: number | undefined;
  private readonly info: CallInfo;
  private readonly clientSpan: ReturnType<typeof startClientSpan>;
  /** Why the caller was refused (callers.ts), thrown when the call runs; undefined: admitted. */
  private readonly denied: unknown;

  constructor(
    private readonly hosted: Hosted,
    method: DescMethod,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    contextValues: ContextValues | undefined,
    callers: CallerCheck,
  ) {
    if (signal?.aborted === true) throw new ConnectError("call cancelled by the caller", Code.Canceled);
    const requestHeader = header instanceof Headers ? header : new Headers(header);
    // Admitted before the call is observed, so its span sees the verified caller.
    try {
      callers.admit(method, requestHeader);
    } catch (err) {
      this.denied = err;
    }
    this.clientSpan = tracingOn() ? clientSpanOf(method, requestHeader) : undefined;
    this.callerSignal = signal;
    // The handler's signal: the caller's own when nothing else can end the
    // call early; a controller of its own when a deadline can.
    let handlerSignal: AbortSignal;
    const callerDeadline = (signal as DeadlineSignal | undefined)?.[SIGNAL_DEADLINE];
    if (timeoutMs !== undefined && timeoutMs > 0 && signal !== undefined && callerDeadline !== undefined && callerDeadline <= Date.now() + timeoutMs) {
      // Called from an in-process handler whose own deadline comes first (a
      // nested call passes the time left on): the caller's signal aborts by
      // then with DeadlineExceeded, so it serves as this call's too, without
      // a controller, a timer and a listener of its own per nested call.
      this.deadline = callerDeadline;
      handlerSignal = signal;
    } else if (timeoutMs !== undefined && timeoutMs > 0) {
      this.deadline = Date.now() + timeoutMs;
      const controller = (this.controller = new AbortController());
      this.timer = setTimeout(() => controller.abort(deadlineExceeded()), timeoutMs);
      if (signal !== undefined) {
        const onAbort = (): void => controller.abort(signal.reason);
        this.onCallerAbort = onAbort;
        signal.addEventListener("abort", onAbort, { once: true });
      }
      (controller.signal as DeadlineSignal)[SIGNAL_DEADLINE] = this.deadline;
      handlerSignal = controller.signal;
    } else {
      handlerSignal = signal ?? (this.controller = new AbortController()).signal;
    }
    const deadline = this.deadline;
    let responseHeader: Headers | undefined;
    let responseTrailer: Headers | undefined;
    let values = contextValues;
    this.ctx = {
      method,
      service: method.parent,
      signal: handlerSignal,
      timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
      requestMethod: "POST",
      requestHeader,
      get responseHeader() {
        return (responseHeader ??= new Headers());
      },
      get responseTrailer() {
        return (responseTrailer ??= new Headers());
      },
      protocolName: "in-process",
      get values() {
        return (values ??= createContextValues());
      },
      url: hosted.url,
    };
    const requestId = requestHeader.get(REQUEST_ID_HEADER) ?? undefined;
    this.info = {
      service: method.parent.name,
      method: method.name,
      requestId,
      trace: tracingOn()
        ? {
            system: "grpc",
            method: `${method.parent.typeName}/${method.name}`,
            requestId,
            callerId: requestHeader.get(CALLER_ID_HEADER) ?? undefined,
            parent: requestHeader,
          }
        : undefined,
    };
  }

  /** Throws the caller's refusal, if it was refused: first thing in the observed run. */
  admitted(): void {
    if (this.denied !== undefined) throw this.denied;
  }

  /** Runs a unary-shaped call observed, its answer or error as the caller receives it. */
  run<T>(body: () => Promise<T>): Promise<T> {
    // The call ends at its deadline or the caller's abort, whether or not the handler has noticed.
    const bounded = this.timer === undefined && this.callerSignal === undefined ? body : () => untilAborted(body(), this.ctx.signal);
    return observeCall(this.hosted.metrics, this.hosted.log, this.info, bounded).then(
      (v) => this.ok(v),
      (err: unknown) => {
        throw this.failed(err);
      },
    );
  }

  /**
   * The handler's output stream, observed from the first pull to its end.
   * When the call's signal aborts (the caller gave up, or the deadline) the
   * handler's stream is closed at once, as a server closes it when the
   * client goes: its `finally` blocks run (subscriptions are released) even
   * if nobody reads again.
   */
  serveStream<O extends DescMessage>(schema: O, open: () => AsyncIterable<MessageInitShape<O>>): AsyncIterable<MessageShape<O>> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const call = this;
    return (async function* () {
      const signal = call.ctx.signal;
      let settle!: (err?: unknown) => void;
      const finished = new Promise<void>((resolve, reject) => {
        settle = (err) => (err === undefined ? resolve() : reject(err));
      });
      let done = false;
      const finish = (err?: unknown): void => {
        if (done) return;
        done = true;
        settle(err);
      };
      // observeCall runs this inside the call's server span (when traced): the
      // context it sees is the one the handler's steps run in below, so what
      // the handler does is a child of the stream's span.
      let inSpan: Context | undefined;
      const observed = observeCall(call.hosted.metrics, call.hosted.log, call.info, () => {
        inSpan = context.active();
        return finished;
      });
      observed.catch(() => {});
      const traced = <T>(fn: () => T): T => (inSpan === undefined ? fn() : context.with(inSpan, fn));
      let source: AsyncIterator<MessageInitShape<O>> | undefined;
      const close = (): void => {
        source?.return?.(undefined)?.catch(() => {});
      };
      const onAbort = (): void => {
        finish(signal.reason);
        close();
        call.end();
      };
      try {
        if (signal.aborted) throw signal.reason;
        signal.addEventListener("abort", onAbort, { once: true });
        source = traced(() => open()[Symbol.asyncIterator]());
        for (;;) {
          const next = await traced(() => source!.next());
          if (signal.aborted) throw signal.reason;
          if (next.done === true) break;
          yield normalize(schema, next.value);
        }
        finish();
        await observed;
        call.ok(undefined);
      } catch (err) {
        finish(err);
        throw call.failed(await observed.then(() => err, (mapped: unknown) => mapped));
      } finally {
        signal.removeEventListener("abort", onAbort);
        // The caller stopped reading early (return()): the handler's stream ends here.
        if (!done) {
          finish(new ConnectError("stream abandoned by the caller", Code.Canceled));
          close();
        }
        call.end();
      }
    })();
  }

  /** Releases the deadline timer and the abort listener, and ends the handler's signal. */
  end(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onCallerAbort !== undefined) this.callerSignal?.removeEventListener("abort", this.onCallerAbort);
    // As a server does when a call completes: work tied to the call stops.
    this.controller?.abort(CALL_COMPLETED);
  }

  private ok<T>(value: T): T {
    if (this.clientSpan?.isRecording() === true) endRpcSpan(this.clientSpan, undefined, "client");
    return value;
  }

  /** What the caller receives: only what a wire hop carries (code, message, metadata). */
  private failed(err: unknown): ConnectError {
    const e = err instanceof ConnectError ? err : ConnectError.from(err);
    const received = new ConnectError(e.rawMessage, e.code, e.metadata);
    if (this.clientSpan?.isRecording() === true) endRpcSpan(this.clientSpan, received.code, "client", received.rawMessage);
    return received;
  }
}

function clientSpanOf(method: DescMethod, header: Headers): ReturnType<typeof startClientSpan> {
  const span = startClientSpan({
    system: "grpc",
    method: `${method.parent.typeName}/${method.name}`,
    requestId: header.get(REQUEST_ID_HEADER) ?? undefined,
    callerId: header.get(CALLER_ID_HEADER) ?? undefined,
  });
  if (span !== undefined) injectSpan(span, (key, value) => header.set(key, value));
  return span;
}

/** The deadline (epoch ms) at which an in-process handler's signal aborts with DeadlineExceeded, set on the signals made here. */
const SIGNAL_DEADLINE = Symbol("chirp.inProcess.deadline");
type DeadlineSignal = AbortSignal & { [SIGNAL_DEADLINE]?: number };

/**
 * Marks `signal` as one that aborts with DeadlineExceeded by `deadline`
 * (epoch ms) at the latest, as the signals of in-process handlers are: an
 * in-process call made with it and a timeout ending no earlier then uses it
 * as the callee's signal, with no controller, timer and listener of its own.
 * For a caller outside this module whose signal keeps that promise (the
 * gateway's lean path).
 */
export function markDeadline(signal: AbortSignal, deadline: number): void {
  (signal as DeadlineSignal)[SIGNAL_DEADLINE] = deadline;
}

/**
 * The reason a finished call's signal aborts with: one shared object, since
 * nothing reads it (an error built per call would capture a stack per call).
 */
const CALL_COMPLETED = new ConnectError("call completed", Code.Canceled);

/** `work`'s outcome, or the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

function deadlineExceeded(): ConnectError {
  return new ConnectError("the call's deadline passed", Code.DeadlineExceeded);
}

function normalize<D extends DescMessage>(schema: D, value: MessageInitShape<D> | MessageShape<D>): MessageShape<D> {
  return isMessage(value, schema) ? value : create(schema, value as MessageInitShape<D>);
}

async function* validated<D extends DescMessage>(schema: D, input: AsyncIterable<MessageInitShape<D>>): AsyncIterable<MessageShape<D>> {
  for await (const m of input) {
    const message = normalize(schema, m);
    validateRequest(schema, message);
    yield message;
  }
}

async function* single<T>(value: T): AsyncIterable<T> {
  yield value;
}
