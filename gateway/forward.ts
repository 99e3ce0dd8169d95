import { randomUUID } from "node:crypto";
import type { DescMethod, DescMethodServerStreaming, DescMethodUnary, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type Transport } from "@connectrpc/connect";
import { authenticateBearerClaims } from "../lib/auth/bearer.js";
import type { TokenVerifier } from "../lib/auth/token.js";
import type { Logger } from "../lib/logger.js";
import type { Metrics } from "../lib/metrics.js";
import { REQUEST_ID_HEADER, USER_AGENT_HEADER } from "../lib/rpc/metadata.js";
import { observeCall, type CallInfo } from "../lib/rpc/observe.js";
import { ATTR, annotateActiveSpan, tracingOn } from "../lib/tracing/tracing.js";
import { requestRecordKey, type RequestRecord } from "./access.js";
import type { Account, AccountLimiter, AttemptOutcome } from "./account-limit.js";
import { rateClassOf } from "./public-api.js";
import type { RateClass, RateLimiter } from "./rate-limit.js";
import { retryInfo } from "./retry-info.js";
import type { Vouching } from "./vouch.js";

export interface ForwardOptions {
  readonly transport: Transport;
  readonly defaultTimeoutMs: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Checks bearer tokens; the caller it names travels to the mesh in an assertion (vouch). */
  readonly verifier: TokenVerifier;
  /** Makes the assertion of a call for a signed-in user (vouch.ts). */
  readonly vouch: Vouching;
  /** Per-user and per-address limits; undefined: none (no Redis configured). */
  readonly limiter: RateLimiter | undefined;
  /** Wrong passwords per account (LogIn, ChangePassword); undefined: none. */
  readonly accountLimiter?: AccountLimiter | undefined;
  /** Told of every authenticated call's user and session (their last activity, lib/auth/session-activity.ts). */
  readonly onSession?: (userId: string, sessionId: string) => void;
  /**
   * Aborted when the gateway starts shutting down: open streams end at once
   * (Unavailable, so clients reconnect elsewhere) while unary calls in flight
   * are left to finish.
   */
  readonly streamsClosing: AbortSignal;
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
    impl[method.localName] = forwarder(method, rateClassOf(service, name), options);
  }
  return impl;
}

function forwarder(method: DescMethod, rateClass: RateClass, options: ForwardOptions): unknown {
  const { transport, log, metrics } = options;
  switch (method.methodKind) {
    case "unary": {
      const unary = method as DescMethodUnary;
      return async (request: unknown, ctx: HandlerContext) => {
        const record = recordOf(ctx, method);
        const header = meshHeaders(record);
        try {
          return await observeCall(metrics, log, callInfo(method, header), async () => {
            await admit(ctx, header, record, rateClass, options, unary, timeoutMs(ctx, options));
            const check = passwordCheck(record, request);
            const attempt = check === undefined || options.accountLimiter === undefined ? undefined : await options.accountLimiter.begin(check.account, record.ip, record.requestId);
            if (attempt?.allowed === false) throw rateLimited(attempt.retryAfterMs);
            let outcome: AttemptOutcome = "neither";
            try {
              const response = await transport.unary(unary, ctx.signal, timeoutMs(ctx, options), header, request as never);
              outcome = "right";
              return response.message;
            } catch (err) {
              if (ConnectError.from(err).code === check?.wrong) outcome = "wrong";
              throw err;
            } finally {
              // Not waited for: the answer need not wait on Redis.
              void attempt?.settle(outcome);
            }
          });
        } catch (err) {
          record.code = ConnectError.from(err).code;
          throw err;
        }
      };
    }
    case "server_streaming": {
      const streaming = method as DescMethodServerStreaming;
      return async function* (request: unknown, ctx: HandlerContext) {
        const record = recordOf(ctx, method);
        const header = meshHeaders(record);
        // Ends the mesh stream when the client goes or the gateway shuts down. A
        // plain controller rather than AbortSignal.any(), whose combined signal
        // Node 20 may collect while a listener still waits on it. Either may
        // have happened already (this body runs on the response's first pull),
        // and a listener added to an aborted signal never fires: the mesh
        // stream would stay open with nobody reading it.
        const abort = new AbortController();
        const stop = (): void => abort.abort();
        ctx.signal.addEventListener("abort", stop, { once: true });
        options.streamsClosing.addEventListener("abort", stop, { once: true });
        if (ctx.signal.aborted || options.streamsClosing.aborted) stop();
        const signal = abort.signal;
        try {
          // A live stream has no deadline unless the client asked for one.
          const response = await observeCall(metrics, log, callInfo(method, header), async () => {
            await admit(ctx, header, record, rateClass, options, streaming, ctx.timeoutMs());
            // The client may also have gone while admit() waited (on Redis).
            if (signal.aborted) throw new ConnectError("the client went away", Code.Canceled);
            return transport.stream(streaming, signal, ctx.timeoutMs(), header, once(request as never));
          });
          yield* response.message;
        } catch (err) {
          const e =
            options.streamsClosing.aborted && !ctx.signal.aborted
              ? new ConnectError("gateway is shutting down; reconnect", Code.Unavailable)
              : ConnectError.from(err);
          record.code = e.code;
          throw e;
        } finally {
          ctx.signal.removeEventListener("abort", stop);
          options.streamsClosing.removeEventListener("abort", stop);
        }
      };
    }
    default:
      return () => {
        throw new ConnectError(`${method.name} is not available at the gateway`, Code.Unimplemented);
      };
  }
}

/** The request's record (access.ts); a stand-in when the handler runs without one (tests calling it directly). */
function recordOf(ctx: HandlerContext, method: DescMethod): RequestRecord {
  const record = ctx.values.get(requestRecordKey) ?? {
    requestId: randomUUID(),
    ip: "unknown",
    method: "",
    code: undefined,
    userId: undefined,
  };
  record.method = `${method.parent.name}/${method.name}`;
  ctx.responseHeader.set(REQUEST_ID_HEADER, record.requestId);
  return record;
}

function meshHeaders(record: RequestRecord): Headers {
  // A fresh set: nothing the client sent travels on, so a client-sent caller
  // header or assertion never reaches the mesh; admit() alone sets one.
  return new Headers({ [REQUEST_ID_HEADER]: record.requestId });
}

/**
 * Vouches for the caller of a valid `Authorization: Bearer` token with an
 * assertion for this method and request (no header is an anonymous call; a
 * bad token is Unauthenticated on every RPC, bearer.ts), then takes a token
 * from the caller's and the address's rate-limit buckets.
 */
async function admit(
  ctx: HandlerContext,
  header: Headers,
  record: RequestRecord,
  rateClass: RateClass,
  options: ForwardOptions,
  method: DescMethod,
  callTimeoutMs: number | undefined,
): Promise<void> {
  const claims = authenticateBearerClaims(ctx.requestHeader.get("authorization"), options.verifier);
  const caller = claims?.sub;
  if (claims !== undefined) {
    options.vouch(header, claims.sub, claims.sid, method, record.requestId, callTimeoutMs);
    record.userId = claims.sub;
    annotateActiveSpan({ [ATTR.callerId]: claims.sub });
    options.onSession?.(claims.sub, claims.sid);
  }
  // The user service describes a session by the client that began it.
  if (record.method === "UserService/SignUp" || record.method === "UserService/LogIn") {
    const agent = ctx.requestHeader.get("user-agent");
    if (agent !== null) header.set(USER_AGENT_HEADER, agent.slice(0, 256));
  }
  if (options.limiter === undefined) return;
  const decision = await options.limiter.admit(rateClass, { userId: caller, ip: record.ip }, record.requestId);
  if (!decision.allowed) throw rateLimited(decision.retryAfterMs);
}

// LogIn's handle rule (user_service.proto): anything else is InvalidArgument
// at the user service, no guess at a password, and names no account.
const HANDLE = /^[A-Za-z0-9_]{1,15}$/;

/**
 * The account whose password a call checks, and the code that says the
 * password was wrong: LogIn's handle (Unauthenticated), ChangePassword's and
 * DeleteAccount's caller (PermissionDenied; an anonymous call is refused
 * before any check).
 */
function passwordCheck(record: RequestRecord, request: unknown): { account: Account; wrong: Code } | undefined {
  if (record.method === "UserService/LogIn") {
    const handle = (request as { handle?: unknown }).handle;
    return typeof handle === "string" && HANDLE.test(handle) ? { account: { handle }, wrong: Code.Unauthenticated } : undefined;
  }
  if ((record.method === "UserService/ChangePassword" || record.method === "UserService/DeleteAccount") && record.userId !== undefined) {
    return { account: { userId: record.userId }, wrong: Code.PermissionDenied };
  }
  return undefined;
}

/**
 * ResourceExhausted with the wait in two standard forms: a `retry-after`
 * header (whole seconds, HTTP's) and a google.rpc.RetryInfo detail (exact).
 */
export function rateLimited(retryAfterMs: number): ConnectError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new ConnectError(`rate limit exceeded; retry in ${seconds} s`, Code.ResourceExhausted, { "retry-after": String(seconds) }, [
    retryInfo(retryAfterMs),
  ]);
}

function timeoutMs(ctx: HandlerContext, options: ForwardOptions): number {
  return ctx.timeoutMs() ?? options.defaultTimeoutMs;
}

/**
 * The public call's metrics labels and, when tracing, its server span: the
 * root of the request's trace. A traceparent the client sent is not
 * continued: sampling is the gateway's decision, not the caller's.
 */
function callInfo(method: DescMethod, header: Headers): CallInfo {
  const requestId = header.get(REQUEST_ID_HEADER) ?? undefined;
  return {
    service: method.parent.name,
    method: method.name,
    requestId,
    trace: tracingOn() ? { system: "connectrpc", method: `${method.parent.typeName}/${method.name}`, requestId } : undefined,
  };
}

async function* once<T>(value: T): AsyncIterable<T> {
  yield value;
}
