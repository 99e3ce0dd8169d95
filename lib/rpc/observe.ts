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

/** One method's metric children, made once: prom-client hashes a label object on every inc() or observe(). */
interface MethodInstruments {
  readonly inFlight: { inc(): void; dec(): void };
  readonly duration: Map<string, { observe(seconds: number): void }>;
}

/** Per metrics view (registry and component), per service and method. */
const instrumentsByView = new WeakMap<Metrics, Map<string, MethodInstruments>>();

function instrumentsFor(metrics: Metrics, service: string, method: string): MethodInstruments {
  let byMethod = instrumentsByView.get(metrics);
  if (byMethod === undefined) instrumentsByView.set(metrics, (byMethod = new Map()));
  const key = `${service}/${method}`;
  let instruments = byMethod.get(key);
  if (instruments === undefined) {
    instruments = { inFlight: metrics.rpcServerInFlight.labels({ service, method, component: metrics.component }), duration: new Map() };
    byMethod.set(key, instruments);
  }
  return instruments;
}

function durationFor(metrics: Metrics, instruments: MethodInstruments, service: string, method: string, code: string): { observe(seconds: number): void } {
  let child = instruments.duration.get(code);
  if (child === undefined) {
    child = metrics.rpcServerDuration.labels({ service, method, code, component: metrics.component });
    instruments.duration.set(code, child);
  }
  return child;
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
  const instruments = instrumentsFor(metrics, call.service, call.method);
  instruments.inFlight.inc();
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
    instruments.inFlight.dec();
    durationFor(metrics, instruments, call.service, call.method, code).observe(seconds);
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
