import { createEventBus } from "../lib/events/bus.js";
import { loadBusConfig } from "../lib/events/config.js";
import { createLogger } from "../lib/logger.js";
import { createMetrics, serveMetrics } from "../lib/metrics.js";
import { onShutdownSignal } from "../lib/shutdown.js";
import { loadTracingConfig } from "../lib/tracing/config.js";
import { startTracing } from "../lib/tracing/tracing.js";
import { loadGatewayConfig } from "./config.js";
import { startGateway } from "./server.js";

const config = loadGatewayConfig(process.env);
const log = createLogger("gateway", config.logLevel);
// First in, last out: spans of the drain are exported too.
const tracing = startTracing(loadTracingConfig(process.env, "gateway"), log);
// NATS, when configured: the ended sessions every gateway refuses.
const busConfig = loadBusConfig(process.env);
const bus = busConfig.natsUrl === undefined ? undefined : createEventBus({ config: { ...busConfig, natsUrl: busConfig.natsUrl }, log, name: "chirp-gateway" });
const metrics = createMetrics("gateway");
// /metrics on a port of its own, off the public one (CHIRP_GATEWAY_PUBLIC_METRICS).
const metricsServer = await serveMetrics(metrics.registry, config.metricsPort, config.metricsHost);
const gateway = await startGateway(config, log, metrics, bus === undefined ? {} : { bus });
log.info({ url: `http://${config.host}:${gateway.port}`, metrics: `http://${config.metricsHost}:${metricsServer.port}/metrics` }, "serving");
process.send?.({ type: "ready", service: "gateway", port: gateway.port, metricsPort: metricsServer.port });
onShutdownSignal(log, async () => {
  await gateway.close();
  await metricsServer.close();
  await bus?.close();
  await tracing.shutdown();
});
