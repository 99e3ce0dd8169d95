// The topology manager's settings, read once from the environment. It takes
// the ADMIN account (it promotes, fences and re-points members): MYSQL_URL_<RS>
// with admin credentials, primary first. Services never get these.
import { InfraEnvError, parseInfraEnv, replicaSetEnvVar } from "../../lib/shard/infra-env.js";
import type { MysqlCredentials, ReplicaSetInfo } from "../../lib/shard/types.js";
import { ConfigError, EnvReader, LOG_LEVELS, type Env, type LogLevel } from "../../lib/config.js";
import { loadShardConfig, ShardConfigError, type ShardConfig } from "../../lib/shard/shard-config.js";
import { DEMAND_EVERY_MS } from "../../lib/shard/heartbeat-demand.js";

export const DEFAULT_TOPOLOGY_METRICS_PORT = 9110;
const DEFAULT_HEARTBEAT_ON_DEMAND_MS = 5_000;
const DEFAULT_QUIET_STATE_MS = 2_000;
const DEFAULT_ERRANT_DIR = ".data/errant";
const DEFAULT_LEASE_MS = 1_500;

export interface TopologyConfig {
  readonly shardConfig: ShardConfig;
  /** Every member the manager watches, by replica set; the first listed is the bootstrap primary. */
  readonly replicaSets: readonly ReplicaSetInfo[];
  readonly admin: MysqlCredentials;
  /**
   * The account replicas connect with (CHANGE MASTER).
   *
   * CHIRP_TOPOLOGY_REPL_USER: the account replicas replicate with when the
   * manager re-points them; default the admin account of the MySQL URLs.
   *
   * CHIRP_TOPOLOGY_REPL_PASSWORD: CHIRP_TOPOLOGY_REPL_USER's password (empty when not set).
   */
  readonly repl: MysqlCredentials;
  readonly natsUrl: string;
  readonly host: string;
  /** CHIRP_TOPOLOGY_METRICS_PORT: the manager's `/metrics` and `/healthz` port. */
  readonly metricsPort: number;
  readonly logLevel: LogLevel;
  /** CHIRP_TOPOLOGY_PROBE_MS: how often every member is probed. */
  readonly probeIntervalMs: number;
  /** CHIRP_TOPOLOGY_PROBE_TIMEOUT_MS: connect and query timeout of one probe. */
  readonly probeTimeoutMs: number;
  /** CHIRP_TOPOLOGY_FAILURES: consecutive failed probes before a primary counts as down. */
  readonly failuresToFailover: number;
  /**
   * CHIRP_TOPOLOGY_REPLICA_CONFIRM_MS: a down primary is failed over at once
   * when its replicas have lost it too; if a replica still streams from it, only
   * after this long (the manager's own network may be what is broken).
   */
  readonly replicaConfirmMs: number;
  /** CHIRP_TOPOLOGY_HEARTBEAT_MS: how often each primary's heartbeat row is rewritten while heartbeats are wanted. */
  readonly heartbeatIntervalMs: number;
  /**
   * CHIRP_TOPOLOGY_HEARTBEAT_ON_DEMAND_MS: heartbeats are written for this
   * long after a shard router last asked for them (it asks every second while
   * it needs replica lag measured), and on a replica set in trouble (a member
   * down or not replicating, semi-sync off); none otherwise. 0: written all the
   * time. At least 2000 when not 0.
   */
  readonly heartbeatOnDemandMs: number;
  /** CHIRP_TOPOLOGY_STATE_MS: how often each member's replication state is read while anything in its replica set changes or is wrong (protocol pings in between). */
  readonly stateMs: number;
  /**
   * CHIRP_TOPOLOGY_QUIET_STATE_MS: how often each member's state is read while
   * nothing in its replica set changes (no writes, not even heartbeats) and
   * nothing is wrong (every member up and replicating from the primary,
   * semi-sync on). A change goes back to CHIRP_TOPOLOGY_STATE_MS; trouble also
   * reads every member's state at once.
   */
  readonly quietStateMs: number;
  /** CHIRP_TOPOLOGY_APPLY_TIMEOUT_MS: how long a candidate may take to apply its relay log. */
  readonly applyTimeoutMs: number;
  /**
   * CHIRP_TOPOLOGY_AUTO_REBUILD: a member refused for transactions the primary
   * lacks is rebuilt from the primary (after they are saved); false leaves it
   * out of the topology for an operator.
   */
  readonly autoRebuild: boolean;
  /** CHIRP_TOPOLOGY_ERRANT_DIR: where a refused member's errant transactions are saved before its rebuild. */
  readonly errantDir: string;
  /**
   * CHIRP_TOPOLOGY_LEASE_MS: the leader's lease. Several managers may run;
   * one acts, and a standby takes over this long after the leader stops
   * renewing (at once when it shuts down cleanly).
   */
  readonly leaseMs: number;
  /**
   * CHIRP_TOPOLOGY_STANDBY_READY: a standby reports ready to its parent
   * process (npm start) while it waits, once it has probed every member (it
   * waits warm: decision 27).
   */
  readonly standbyReady: boolean;
}

export function loadTopologyConfig(env: Env): TopologyConfig {
  const read = new EnvReader(env);
  const problems: string[] = [];
  let shardConfig: ShardConfig | undefined;
  try {
    shardConfig = loadShardConfig(read.string("CHIRP_SHARD_CONFIG", "local"));
  } catch (err) {
    if (!(err instanceof ShardConfigError)) throw err;
    problems.push(err.message);
  }
  let replicaSets: ReplicaSetInfo[] = [];
  let admin: MysqlCredentials = { user: "", password: "" };
  if (shardConfig) {
    try {
      // The MySQL URLs alone: the application account and the other URLs are the services' business.
      const mysqlUrls = ["MYSQL_URL", ...shardConfig.replicaSets.map((rs) => replicaSetEnvVar(rs.name))];
      const parsed = parseInfraEnv(Object.fromEntries(mysqlUrls.map((name) => [name, env[name]])), shardConfig);
      if (parsed.mysql === undefined) problems.push("MYSQL_URL_<RS> (or MYSQL_URL) with the admin account is required");
      else ({ replicaSets, adminUser: admin } = parsed.mysql);
    } catch (err) {
      if (!(err instanceof InfraEnvError)) throw err;
      problems.push(...err.problems);
    }
  }
  const replUser = read.optional("CHIRP_TOPOLOGY_REPL_USER");
  const config: TopologyConfig = {
    shardConfig: shardConfig ?? { keyspace: "", replicaSets: [], shards: [] },
    replicaSets,
    admin,
    repl: replUser === undefined ? admin : { user: replUser, password: read.optional("CHIRP_TOPOLOGY_REPL_PASSWORD") ?? "" },
    natsUrl: read.string("NATS_URL"),
    host: read.string("CHIRP_BIND_HOST", "127.0.0.1"),
    metricsPort: read.port("CHIRP_TOPOLOGY_METRICS_PORT", DEFAULT_TOPOLOGY_METRICS_PORT),
    logLevel: read.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
    probeIntervalMs: read.int("CHIRP_TOPOLOGY_PROBE_MS", 250, 20, 10_000),
    probeTimeoutMs: read.int("CHIRP_TOPOLOGY_PROBE_TIMEOUT_MS", 500, 50, 30_000),
    failuresToFailover: read.int("CHIRP_TOPOLOGY_FAILURES", 3, 1, 100),
    replicaConfirmMs: read.int("CHIRP_TOPOLOGY_REPLICA_CONFIRM_MS", 5_000, 0, 600_000),
    heartbeatIntervalMs: read.int("CHIRP_TOPOLOGY_HEARTBEAT_MS", 250, 10, 60_000),
    heartbeatOnDemandMs: read.int("CHIRP_TOPOLOGY_HEARTBEAT_ON_DEMAND_MS", DEFAULT_HEARTBEAT_ON_DEMAND_MS, 0, 3_600_000),
    stateMs: read.int("CHIRP_TOPOLOGY_STATE_MS", 1000, 0, 60_000),
    quietStateMs: read.int("CHIRP_TOPOLOGY_QUIET_STATE_MS", DEFAULT_QUIET_STATE_MS, 0, 60_000),
    applyTimeoutMs: read.int("CHIRP_TOPOLOGY_APPLY_TIMEOUT_MS", 30_000, 100, 3_600_000),
    autoRebuild: read.oneOf("CHIRP_TOPOLOGY_AUTO_REBUILD", ["true", "false"], "true") === "true",
    errantDir: read.string("CHIRP_TOPOLOGY_ERRANT_DIR", DEFAULT_ERRANT_DIR),
    leaseMs: read.int("CHIRP_TOPOLOGY_LEASE_MS", DEFAULT_LEASE_MS, 500, 600_000),
    standbyReady: read.oneOf("CHIRP_TOPOLOGY_STANDBY_READY", ["true", "false"], "true") === "true",
  };
  const more: string[] = [];
  // Routers ask again every DEMAND_EVERY_MS: a shorter window would lapse between asks.
  if (config.heartbeatOnDemandMs !== 0 && config.heartbeatOnDemandMs < 2 * DEMAND_EVERY_MS) {
    more.push(`CHIRP_TOPOLOGY_HEARTBEAT_ON_DEMAND_MS must be 0 (always) or at least ${2 * DEMAND_EVERY_MS}`);
  }
  try {
    read.done(more);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The defaults above for a known cluster (tests, benchmarks run the manager in-process). */
export function topologyConfigFor(
  infra: { mysql: { replicaSets: readonly ReplicaSetInfo[]; adminUser: MysqlCredentials }; natsUrl: string },
  shardConfig: ShardConfig,
  overrides: Partial<TopologyConfig> = {},
): TopologyConfig {
  return {
    shardConfig,
    replicaSets: infra.mysql.replicaSets,
    admin: infra.mysql.adminUser,
    repl: infra.mysql.adminUser,
    natsUrl: infra.natsUrl,
    host: "127.0.0.1",
    metricsPort: 0,
    logLevel: "info",
    probeIntervalMs: 250,
    probeTimeoutMs: 500,
    failuresToFailover: 3,
    replicaConfirmMs: 5_000,
    heartbeatIntervalMs: 250,
    heartbeatOnDemandMs: DEFAULT_HEARTBEAT_ON_DEMAND_MS,
    stateMs: 1000,
    quietStateMs: DEFAULT_QUIET_STATE_MS,
    applyTimeoutMs: 30_000,
    autoRebuild: true,
    errantDir: DEFAULT_ERRANT_DIR,
    leaseMs: DEFAULT_LEASE_MS,
    standbyReady: true,
    ...overrides,
  };
}
