import { createLogger } from "../services/lib/logger.js";
import { createMetrics } from "../services/lib/metrics.js";
import { onShutdownSignal } from "../services/lib/shutdown.js";
import { loadTracingConfig } from "../services/lib/tracing/config.js";
import { startTracing } from "../services/lib/tracing/tracing.js";
import { loadGatewayConfig } from "./config.js";
import { startGateway } from "./server.js";

const config = loadGatewayConfig(process.env);
const log = createLogger("gateway", config.logLevel);
// First in, last out: spans of the drain are exported too.
const tracing = startTracing(loadTracingConfig(process.env, "gateway"), log);
const gateway = await startGateway(config, log, createMetrics("gateway"));
log.info({ url: `http://${config.host}:${gateway.port}` }, "serving");
process.send?.({ type: "ready", service: "gateway", port: gateway.port });
onShutdownSignal(log, async () => {
  await gateway.close();
  await tracing.shutdown();
});
