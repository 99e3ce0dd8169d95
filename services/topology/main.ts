// Process entry of the topology manager. Started by `npm start` before the
// services (devcluster/launch.ts), with the admin account in MYSQL_URL_<RS>.
import { hostname } from "node:os";
import { connect } from "@nats-io/transport-node";
import { ConfigError } from "../../lib/config.js";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { createLogger } from "../../lib/logger.js";
import { serveMetrics } from "../../lib/metrics.js";
import { openTopologyKv, readTopology } from "../../lib/shard/topology.js";
import { onShutdownSignal } from "../../lib/shutdown.js";
import { loadTopologyConfig } from "./config.js";
import { acquireLeadership, openLeaderBucket, type Leadership } from "./leadership.js";
import { TopologyManager } from "./manager.js";
import { createTopologyMetrics } from "./metrics.js";

/** Sent over IPC when a parent spawned us: the first topology is published. */
export interface TopologyReadyMessage {
  readonly type: "ready";
  readonly service: "topology";
  readonly metricsPort: number;
  readonly epoch: number;
  /** Whether it leads (and published `epoch`) or waits as a standby (`epoch` as it found it). */
  readonly role: "leader" | "standby";
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
const leaderKv = await openLeaderBucket(nc, config.leaseMs);
const owner = `${hostname()}:${process.pid}`;
const metricsServer = await serveMetrics(metrics.base.registry, config.metricsPort, config.host);
const stopping = new AbortController();
let manager: TopologyManager | undefined;
let leadership: Leadership | undefined;

onShutdownSignal(log, async () => {
  stopping.abort();
  await manager?.stop();
  // Given up at once, so a standby takes over without waiting for the lease to expire.
  await leadership?.release();
  await metricsServer.close();
  await nc.drain();
});

// Several managers run; the one holding the lease acts, the others wait (leadership.ts).
let readySent = false;
const sendReady = (epoch: number, role: "leader" | "standby"): void => {
  if (readySent) return;
  readySent = true;
  const ready: TopologyReadyMessage = { type: "ready", service: "topology", metricsPort: metricsServer.port, epoch, role };
  process.send?.(ready);
};
while (!stopping.signal.aborted) {
  metrics.leader.set(0);
  // Warm while it waits: it probes every member (changing nothing), so on taking the lease it
  // decides from what it saw instead of starting cold (manager.ts, watch()).
  manager = new TopologyManager(config, { log, metrics, kv, nc });
  const warm = manager.watch();
  try {
    leadership = await acquireLeadership({
      kv: leaderKv,
      keyspace: config.shardConfig.keyspace,
      owner,
      ttlMs: config.leaseMs,
      signal: stopping.signal,
      onWaiting: (leader) => {
        log.info({ leader: leader ?? "(none: taking over)", owner }, "standby: another topology manager leads");
        // Ready once it has probed every member: it could take over warm from then on.
        if (leader !== undefined && config.standbyReady) {
          void warm.then(() => readTopology(kv, config.shardConfig.keyspace)).then((t) => sendReady(t?.topology.epoch ?? 0, "standby"));
        }
      },
    });
  } catch (err) {
    await manager.stop();
    manager = undefined;
    if (stopping.signal.aborted) break;
    throw err;
  }
  metrics.leader.set(1);
  log.info({ owner }, "leading: this topology manager acts");
  let topology;
  try {
    topology = await manager.start(leadership);
  } catch (err) {
    // Say why and hand the lease on rather than die holding it: another manager (or this
    // one, a moment later) tries again from the servers' state as it is then.
    log.error({ err, owner }, "could not take over the topology: giving up the lease and trying again");
    await manager.stop();
    manager = undefined;
    await leadership.release().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    continue;
  }
  log.info(
    {
      metrics: `http://${config.host}:${metricsServer.port}/metrics`,
      epoch: topology.epoch,
      primaries: Object.fromEntries(topology.replicaSets.map((r) => [r.name, r.primary.name])),
    },
    "managing",
  );
  sendReady(topology.epoch, "leader");
  const why = await leadership.lost;
  if (stopping.signal.aborted) break;
  log.error({ err: why.message, owner }, "lost the leadership: stepping down to standby");
  await manager.stop();
  manager = undefined;
}
