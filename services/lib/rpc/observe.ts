import { Code } from "@connectrpc/connect";
import { toConnectError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";

export interface CallInfo {
  readonly service: string;
  readonly method: string;
  readonly requestId: string | undefined;
}

/**
 * Metrics, the access log and error mapping around one handled call, whatever
 * its shape and whichever server (grpc-js in the mesh, connect-node at the edge)
 * runs it. Successful calls are logged at debug; server faults always.
 */
export async function observeCall<T>(
  metrics: Metrics,
  log: Logger,
  call: CallInfo,
  run: () => Promise<T>,
): Promise<T> {
  const labels = { service: call.service, method: call.method };
  metrics.rpcServerInFlight.inc(labels);
  const started = performance.now();
  let code = "OK";
  try {
    return await run();
  } catch (err) {
    const mapped = toConnectError(err, log.child({ method: call.method, request_id: call.requestId }));
    code = Code[mapped.code];
    throw mapped;
  } finally {
    const seconds = (performance.now() - started) / 1000;
    metrics.rpcServerInFlight.dec(labels);
    metrics.rpcServerDuration.observe({ ...labels, code }, seconds);
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
