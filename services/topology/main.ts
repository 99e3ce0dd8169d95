// Process entry of the topology manager. Started by `npm start` before the
// services (devcluster/launch.ts), with the admin account in MYSQL_URL_<RS>.
import { connect } from "@nats-io/transport-node";
import { ConfigError } from "../../lib/config.js";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { createLogger } from "../../lib/logger.js";
import { serveMetrics } from "../../lib/metrics.js";
import { openTopologyKv } from "../../lib/shard/topology.js";
import { onShutdownSignal } from "../../lib/shutdown.js";
import { loadTopologyConfig } from "./config.js";
import { TopologyManager } from "./manager.js";
import { createTopologyMetrics } from "./metrics.js";

/** Sent over IPC when a parent spawned us: the first topology is published. */
export interface TopologyReadyMessage {
  readonly type: "ready";
  readonly service: "topology";
  readonly metricsPort: number;
  readonly epoch: number;
}

let config;
try {
  config = loadTopologyConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`[topology] ${err.message}`);
  process.exit(1);
}
const log = createLogger("topology", config.logLevel);
const metrics = createTopologyMetrics();
const nc = await connect({ ...parseNatsUrl(config.natsUrl), name: "chirp-topology" });
const kv = await openTopologyKv(nc);
const manager = new TopologyManager(config, { log, metrics, kv, nc });
const metricsServer = await serveMetrics(metrics.base.registry, config.metricsPort, config.host);
const topology = await manager.start();

log.info(
  {
    metrics: `http://${config.host}:${metricsServer.port}/metrics`,
    epoch: topology.epoch,
    primaries: Object.fromEntries(topology.replicaSets.map((r) => [r.name, r.primary.name])),
  },
  "managing",
);
const ready: TopologyReadyMessage = { type: "ready", service: "topology", metricsPort: metricsServer.port, epoch: topology.epoch };
process.send?.(ready);

onShutdownSignal(log, async () => {
  await manager.stop();
  await metricsServer.close();
  await nc.drain();
});
