import { Counter, Gauge } from "prom-client";
import { createMetrics, type Metrics } from "../../lib/metrics.js";

/** The manager's own series, on top of the process metrics every component has. */
export interface TopologyMetrics {
  readonly base: Metrics;
  readonly failovers: Counter<"replica_set" | "result">;
  readonly lastFailoverSeconds: Gauge<"replica_set">;
  readonly memberUp: Gauge<"replica_set" | "member">;
  readonly heartbeatWrites: Counter<"replica_set" | "result">;
  readonly rejoins: Counter<"replica_set" | "result">;
  readonly epoch: Gauge;
  readonly semiSyncActive: Gauge<"replica_set">;
  readonly semiSyncClients: Gauge<"replica_set">;
  readonly semiSyncWaitSessions: Gauge<"replica_set">;
  /** 1 while a replica set is not whole (a member not replicating from its primary: down, refused, being rebuilt). */
  readonly degraded: Gauge<"replica_set">;
  readonly degradedSeconds: Counter<"replica_set">;
  /** 1 while this manager holds the lease and acts; 0 as a standby. */
  readonly leader: Gauge;
}

export function createTopologyMetrics(): TopologyMetrics {
  const base = createMetrics("topology");
  const registers = [base.registry];
  return {
    base,
    failovers: new Counter({
      name: "chirp_topology_failovers_total",
      help: "Failovers of a replica set's primary, by result (promoted, aborted).",
      labelNames: ["replica_set", "result"],
      registers,
    }),
    lastFailoverSeconds: new Gauge({
      name: "chirp_topology_last_failover_duration_seconds",
      help: "First failed probe of the old primary to the new topology published, for the last failover.",
      labelNames: ["replica_set"],
      registers,
    }),
    memberUp: new Gauge({
      name: "chirp_topology_member_up",
      help: "1 when the member answered its last probe, 0 otherwise.",
      labelNames: ["replica_set", "member"],
      registers,
    }),
    heartbeatWrites: new Counter({
      name: "chirp_topology_heartbeat_writes_total",
      help: "Heartbeat writes on primaries, by result (ok, error, read_only).",
      labelNames: ["replica_set", "result"],
      registers,
    }),
    rejoins: new Counter({
      name: "chirp_topology_rejoins_total",
      help: "Members made replicas of their primary, by result (ok, refused, failed).",
      labelNames: ["replica_set", "result"],
      registers,
    }),
    epoch: new Gauge({ name: "chirp_topology_epoch", help: "Epoch of the topology this manager last published or read.", registers }),
    semiSyncActive: new Gauge({
      name: "chirp_topology_semi_sync_active",
      help: "1 while the primary's semi-sync is ON (commits wait for a replica), 0 when async.",
      labelNames: ["replica_set"],
      registers,
    }),
    semiSyncClients: new Gauge({
      name: "chirp_topology_semi_sync_clients",
      help: "Semi-sync replicas connected to the primary (Rpl_semi_sync_master_clients): at 0, commits wait for one to return.",
      labelNames: ["replica_set"],
      registers,
    }),
    semiSyncWaitSessions: new Gauge({
      name: "chirp_topology_semi_sync_wait_sessions",
      help: "Commits waiting for a replica's ack on the primary (Rpl_semi_sync_master_wait_sessions), as last read.",
      labelNames: ["replica_set"],
      registers,
    }),
    degraded: new Gauge({
      name: "chirp_topology_replica_set_degraded",
      help: "1 while the replica set is not whole: some member is not replicating from its primary (down, refused, being rebuilt).",
      labelNames: ["replica_set"],
      registers,
    }),
    leader: new Gauge({
      name: "chirp_topology_leader",
      help: "1 while this topology manager holds the lease and acts, 0 while it stands by.",
      registers,
    }),
    degradedSeconds: new Counter({
      name: "chirp_topology_replica_set_degraded_seconds_total",
      help: "Time the replica set has spent not whole, in seconds.",
      labelNames: ["replica_set"],
      registers,
    }),
  };
}
