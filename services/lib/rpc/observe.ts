import { Code } from "@connectrpc/connect";
import { toConnectError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { endRpcSpan, runInSpan, startServerSpan, type RpcSpanInfo } from "../tracing/tracing.js";

export interface CallInfo {
  readonly service: string;
  readonly method: string;
  readonly requestId: string | undefined;
  /**
   * With tracing on: the call's server span (its name, system, caller), a
   * child of the trace context in `parent` (the request's headers) or a new
   * trace without them. Leave undefined when tracing is off.
   */
  readonly trace?: RpcSpanInfo & { readonly parent?: Headers | undefined };
}

/**
 * Metrics, the access log and error mapping around one handled call, whatever
 * its shape and whichever server (grpc-js in the mesh, connect-node at the edge)
 * runs it. Successful calls are logged at debug; server faults always. The
 * server span, when traced, is the active span while `run` runs.
 */
export async function observeCall<T>(
  metrics: Metrics,
  log: Logger,
  call: CallInfo,
  run: () => Promise<T>,
): Promise<T> {
  const labels = { service: call.service, method: call.method, component: metrics.component };
  metrics.rpcServerInFlight.inc(labels);
  const started = performance.now();
  let code = "OK";
  const span = call.trace === undefined ? undefined : startServerSpan(call.trace, call.trace.parent);
  try {
    const result = await (span === undefined ? run() : runInSpan(span, run));
    if (span !== undefined) endRpcSpan(span, undefined, "server");
    return result;
  } catch (err) {
    const mapped = toConnectError(err, log.child({ method: call.method, request_id: call.requestId }));
    code = Code[mapped.code];
    if (span !== undefined) endRpcSpan(span, mapped.code, "server", mapped.rawMessage);
    throw mapped;
  } finally {
    const seconds = (performance.now() - started) / 1000;
    metrics.rpcServerInFlight.dec(labels);
    metrics.rpcServerDuration.observe({ service: call.service, method: call.method, code, component: metrics.component }, seconds);
    const fault = code === "Internal" || code === "Unknown" || code === "Unavailable" || code === "DataLoss";
    if (fault || log.isLevelEnabled("debug")) {
      log[fault ? "warn" : "debug"]({
        method: `${call.service}/${call.method}`,
        code,
        duration_ms: Math.round(seconds * 1e6) / 1e3,
        request_id: call.requestId,
      });
    }
  }
}
