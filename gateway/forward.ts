import { randomUUID } from "node:crypto";
import type { DescMethod, DescMethodServerStreaming, DescMethodUnary, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type Transport } from "@connectrpc/connect";
import { authenticateBearer } from "../services/lib/auth/bearer.js";
import type { TokenVerifier } from "../services/lib/auth/token.js";
import type { Logger } from "../services/lib/logger.js";
import type { Metrics } from "../services/lib/metrics.js";
import { CALLER_ID_HEADER, REQUEST_ID_HEADER } from "../services/lib/rpc/metadata.js";
import { observeCall } from "../services/lib/rpc/observe.js";

export interface ForwardOptions {
  readonly transport: Transport;
  readonly defaultTimeoutMs: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Checks bearer tokens; the caller it names travels to the mesh as x-chirp-caller-id. */
  readonly verifier: TokenVerifier;
}

/**
 * A connect-node implementation of `service` that forwards each allowed method
 * to the mesh over `transport`. The gateway decodes Connect JSON / gRPC-Web,
 * and the mesh hop carries binary protobuf with the request id, the caller's
 * identity and the remaining deadline in metadata.
 */
export function forwardingImpl(service: DescService, methods: readonly string[], options: ForwardOptions): Record<string, unknown> {
  const impl: Record<string, unknown> = {};
  for (const name of methods) {
    const method = service.methods.find((m) => m.name === name);
    if (method === undefined) throw new Error(`${service.typeName} has no method ${name}`);
    impl[method.localName] = forwarder(method, options);
  }
  return impl;
}

function forwarder(method: DescMethod, options: ForwardOptions): unknown {
  const { transport, log, metrics, verifier } = options;
  switch (method.methodKind) {
    case "unary": {
      const unary = method as DescMethodUnary;
      return (request: unknown, ctx: HandlerContext) => {
        const header = meshHeaders(ctx);
        return observeCall(metrics, log, callInfo(method, header), async () => {
          authenticate(ctx, header, verifier);
          const response = await transport.unary(unary, ctx.signal, timeoutMs(ctx, options), header, request as never);
          return response.message;
        });
      };
    }
    case "server_streaming": {
      const streaming = method as DescMethodServerStreaming;
      return async function* (request: unknown, ctx: HandlerContext) {
        const header = meshHeaders(ctx);
        // A live stream has no deadline unless the client asked for one.
        const response = await observeCall(metrics, log, callInfo(method, header), () => {
          authenticate(ctx, header, verifier);
          return transport.stream(streaming, ctx.signal, ctx.timeoutMs(), header, once(request as never));
        });
        yield* response.message;
      };
    }
    default:
      return () => {
        throw new ConnectError(`${method.name} is not available at the gateway`, Code.Unimplemented);
      };
  }
}

function meshHeaders(ctx: HandlerContext): Headers {
  const requestId = validRequestId(ctx.requestHeader.get(REQUEST_ID_HEADER)) ?? randomUUID();
  ctx.responseHeader.set(REQUEST_ID_HEADER, requestId);
  // A fresh set: nothing the client sent travels on, so a client-sent caller
  // id never reaches the mesh; authenticate() alone sets one.
  return new Headers({ [REQUEST_ID_HEADER]: requestId });
}

/**
 * Sets the caller from a valid `Authorization: Bearer` token. No header is an
 * anonymous call; a bad token is Unauthenticated on every RPC (bearer.ts).
 */
function authenticate(ctx: HandlerContext, header: Headers, verifier: TokenVerifier): void {
  const caller = authenticateBearer(ctx.requestHeader.get("authorization"), verifier);
  if (caller !== undefined) header.set(CALLER_ID_HEADER, caller);
}

// Client-chosen ids are echoed into logs: accept only short, plain tokens.
function validRequestId(value: string | null): string | undefined {
  return value !== null && /^[A-Za-z0-9._:-]{1,64}$/.test(value) ? value : undefined;
}

function timeoutMs(ctx: HandlerContext, options: ForwardOptions): number {
  return ctx.timeoutMs() ?? options.defaultTimeoutMs;
}

function callInfo(method: DescMethod, header: Headers) {
  return { service: method.parent.name, method: method.name, requestId: header.get(REQUEST_ID_HEADER) ?? undefined };
}

async function* once<T>(value: T): AsyncIterable<T> {
  yield value;
}
