import { once } from "node:events";
import { create, isMessage, type DescMessage, type DescMethod, type DescService, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createServiceImplSpec,
  type HandlerContext,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { GrpcCallContext } from "./grpc-call-context.js";
import { grpcMethodDefinition } from "./grpc-definition.js";
import { tracingOn } from "../tracing/tracing.js";
import { createCallerCheck, type CallerCheck } from "./callers.js";
import { CALLER_ID_HEADER, REQUEST_ID_HEADER, headersToMetadata, metadataToHeaders } from "./metadata.js";
import { observeCall } from "./observe.js";
import { createReflectionService } from "./reflection.js";
import { validateRequest } from "./validation.js";

/** Shared abort reasons (no stack captured per call): a finished call, a call the client cancelled. */
const CALL_COMPLETED = new ConnectError("call completed", Code.Canceled);
const CANCELLED_BY_CLIENT = new ConnectError("call cancelled by the client", Code.Canceled);

export interface GrpcServerOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Admits each call's caller (rpc/callers.ts); default: anonymous calls only (no mesh key). */
  readonly callers?: CallerCheck;
}

/**
 * A grpc-js server whose handlers are connect-es style service implementations
 * (`Partial<ServiceImpl<typeof X>>`): the same object could be mounted on a
 * connect router, and missing methods answer Unimplemented. Every server also
 * answers grpc.health.v1 and server reflection for the services it hosts.
 */
export class GrpcServer {
  readonly health = new HealthImplementation({ "": "NOT_SERVING" });
  private readonly server = new grpc.Server({
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
  });
  private readonly services: DescService[] = [];
  // The calls in flight, aborted on close(). A shared shutdown signal would
  // collect one listener per concurrent call instead.
  private readonly inFlight = new Set<GrpcCallContext>();
  private port = 0;
  private readonly callers: CallerCheck;

  constructor(private readonly options: GrpcServerOptions) {
    this.callers = options.callers ?? createCallerCheck(undefined);
  }

  /** `metrics`: the view its calls are observed through (default the server's; componentMetrics labels a service's own). */
  register<S extends DescService>(service: S, impl: Partial<ServiceImpl<S>>, metrics: Metrics = this.options.metrics): this {
    const spec = createServiceImplSpec(service, impl);
    const handlers: grpc.UntypedServiceImplementation = {};
    const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
    for (const method of service.methods) {
      const methodSpec = spec.methods[method.localName];
      if (methodSpec === undefined) continue;
      definition[method.localName] = grpcMethodDefinition(method);
      handlers[method.localName] = this.handlerFor(methodSpec, metrics);
    }
    this.server.addService(definition, handlers);
    this.services.push(service);
    this.health.setStatus(service.typeName, "NOT_SERVING");
    return this;
  }

  /** Binds, then marks every registered service SERVING. Returns the bound port. */
  async listen(host: string, port: number): Promise<number> {
    createReflectionService(this.services).addToServer(this.server);
    this.health.addToServer(this.server);
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      );
    });
    for (const s of this.services) this.health.setStatus(s.typeName, "SERVING");
    this.health.setStatus("", "SERVING");
    return this.port;
  }

  /**
   * Graceful drain: report NOT_SERVING so balancers move away, stop taking new
   * calls, let in-flight ones finish for up to `graceMs`, then cut the rest.
   */
  async close(graceMs = 5000): Promise<void> {
    this.health.setStatus("", "NOT_SERVING");
    for (const s of this.services) this.health.setStatus(s.typeName, "NOT_SERVING");
    const reason = new ConnectError("server is shutting down", Code.Unavailable);
    for (const ctx of this.inFlight) ctx.abort(reason);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private handlerFor(spec: MethodImplSpec, metrics: Metrics): grpc.UntypedHandleCall {
    switch (spec.kind) {
      case "unary":
        return (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
          const ctx = this.contextFor(spec.method, call);
          const denied = this.admit(spec.method, ctx);
          this.observe(metrics, spec.method, ctx, async () => {
            if (denied !== undefined) throw denied;
            validateRequest(spec.method.input, call.request);
            return normalize(spec.method.output, await spec.impl(call.request, ctx));
          }).then(
            (message) => callback(null, message, headersToMetadata(ctx.trailerSet)),
            (err: ConnectError) => callback(toServiceError(err)),
          );
        };
      case "server_streaming":
        return (call: grpc.ServerWritableStream<any, any>) => {
          const ctx = this.contextFor(spec.method, call);
          const denied = this.admit(spec.method, ctx);
          this.observe(metrics, spec.method, ctx, async () => {
            if (denied !== undefined) throw denied;
            validateRequest(spec.method.input, call.request);
            await writeAll(call, spec.method.output, spec.impl(call.request, ctx), ctx);
          }).then(
            () => call.end(headersToMetadata(ctx.trailerSet)),
            (err: ConnectError) => call.emit("error", toServiceError(err)),
          );
        };
      case "client_streaming":
        return (call: grpc.ServerReadableStream<any, any>, callback: grpc.sendUnaryData<any>) => {
          const ctx = this.contextFor(spec.method, call);
          const denied = this.admit(spec.method, ctx);
          this.observe(metrics, spec.method, ctx, async () => {
            if (denied !== undefined) throw denied;
            return normalize(spec.method.output, await spec.impl(validatedInputs(spec.method, call), ctx));
          }).then(
            (message) => callback(null, message, headersToMetadata(ctx.trailerSet)),
            (err: ConnectError) => callback(toServiceError(err)),
          );
        };
      case "bidi_streaming":
        return (call: grpc.ServerDuplexStream<any, any>) => {
          const ctx = this.contextFor(spec.method, call);
          const denied = this.admit(spec.method, ctx);
          this.observe(metrics, spec.method, ctx, async () => {
            if (denied !== undefined) throw denied;
            await writeAll(call, spec.method.output, spec.impl(validatedInputs(spec.method, call), ctx), ctx);
          }).then(
            () => call.end(headersToMetadata(ctx.trailerSet)),
            (err: ConnectError) => call.emit("error", toServiceError(err)),
          );
        };
    }
  }

  /**
   * The caller admitted before the call is observed (so its span and log see
   * the verified caller); a refusal is thrown inside the observed run, so it
   * is counted and logged as every other failure.
   */
  private admit(method: DescMethod, ctx: HandlerContext): unknown {
    try {
      this.callers.admit(method, ctx.requestHeader);
      return undefined;
    } catch (err) {
      return err;
    }
  }

  private contextFor(method: DescMethod, call: AnyServerCall): GrpcCallContext {
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
    // grpc-js emits "cancelled" for most finished calls too (the client's stream reset after
    // its answer): by then the call has been ended (observe), and its context ignores it.
    const ctx = new GrpcCallContext(
      method.parent,
      method,
      metadataToHeaders(call.metadata),
      Number.isFinite(deadlineMs) ? deadlineMs : undefined,
      call,
      CANCELLED_BY_CLIENT,
    );
    this.inFlight.add(ctx);
    return ctx;
  }

  private observe<T>(metrics: Metrics, method: DescMethod, ctx: GrpcCallContext, run: () => Promise<T>): Promise<T> {
    const requestId = ctx.requestHeader.get(REQUEST_ID_HEADER) ?? undefined;
    const call = {
      service: method.parent.name,
      method: method.name,
      requestId,
      // The caller's client span sent its context as traceparent; this call's span continues it.
      trace: tracingOn()
        ? {
            system: "grpc" as const,
            method: `${method.parent.typeName}/${method.name}`,
            requestId,
            callerId: ctx.requestHeader.get(CALLER_ID_HEADER) ?? undefined,
            parent: ctx.requestHeader,
          }
        : undefined,
    };
    return observeCall(metrics, this.options.log, call, run).finally(() => {
      this.inFlight.delete(ctx);
      // The call's signal ends with it, and its deadline timer with it (it would fire up to the
      // whole deadline later otherwise, making an error for a call long answered).
      ctx.abort(CALL_COMPLETED);
    });
  }
}

type AnyServerCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

function normalize<D extends DescMessage>(schema: D, value: unknown): MessageShape<D> {
  return isMessage(value, schema) ? value : create(schema, value as never);
}

async function* validatedInputs<D extends DescMessage>(
  method: DescMethod & { input: D },
  stream: AsyncIterable<MessageShape<D>>,
): AsyncIterable<MessageShape<D>> {
  for await (const message of stream) {
    validateRequest(method.input, message);
    yield message;
  }
}

async function writeAll(
  call: grpc.ServerWritableStream<any, any> | grpc.ServerDuplexStream<any, any>,
  schema: DescMessage,
  outputs: AsyncIterable<unknown>,
  ctx: HandlerContext,
): Promise<void> {
  for await (const out of outputs) {
    if (ctx.signal.aborted) break;
    // Respect HTTP/2 flow control instead of buffering a slow client's stream in memory.
    if (!call.write(normalize(schema, out))) await once(call, "drain", { signal: ctx.signal });
  }
}

function toServiceError(err: ConnectError): Partial<grpc.StatusObject> {
  return {
    code: err.code as number as grpc.status,
    details: err.rawMessage,
    metadata: headersToMetadata(err.metadata),
  };
}
