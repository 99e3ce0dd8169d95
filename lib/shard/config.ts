// What a process needs to reach the sharded keyspace, read once from the
// environment: the bootstrap topology and account (MYSQL_URL / MYSQL_URL_<RS>,
// MYSQL_APP_USER/PASSWORD, see devcluster/README.md), where the live
// topology is published (NATS_URL), and the router's limits (CHIRP_DB_*).
import { InfraEnvError, parseInfraEnv } from "./infra-env.js";
import type { MysqlCredentials } from "./types.js";
import { ConfigError, EnvReader, type Env } from "../config.js";
import { loadShardConfig, type ShardConfig } from "./shard-config.js";
import type { LiveTopology } from "./topology.js";

export interface DbConfig {
  /** Epoch 0: the primaries and replicas the env names. The KV document replaces it on the first watch. */
  readonly topology: LiveTopology;
  /** The application account (never the admin one). */
  readonly credentials: MysqlCredentials;
  /** Where the live topology is watched; undefined when NATS_URL is not set. */
  readonly natsUrl: string | undefined;
  /** CHIRP_DB_MAX_LAG_MS: a replica further behind its primary than this serves no reads (they go to another replica or the primary). */
  readonly maxReplicaLagMs: number;
  /** CHIRP_DB_POOL_SIZE: connections per MySQL server per process (shared by the server's shards). */
  readonly poolSize: number;
  /** CHIRP_DB_POOL_QUEUE_LIMIT: statements that may wait for a connection per MySQL server; more fail at once. */
  readonly poolQueueLimit: number;
  /** CHIRP_DB_ACQUIRE_TIMEOUT_MS: the longest a statement waits for a pooled connection. */
  readonly acquireTimeoutMs: number;
  /** CHIRP_DB_QUERY_TIMEOUT_MS: the longest one statement may run. The user service also bounds a sign-up's COMMIT with it (see CHIRP_USER_CLAIM_GRACE_MS). */
  readonly queryTimeoutMs: number;
  /**
   * CHIRP_DB_COMMIT_TIMEOUT_MS: the longest a write's commit (a COMMIT, or a
   * statement outside a transaction on the primary) may wait. Semi-sync never
   * falls back to asynchronous (decision 24), so with no replica to ack a
   * commit waits; past this bound the write answers Unavailable, its outcome
   * unknown (never an acknowledgment).
   */
  readonly commitTimeoutMs: number;
  /** CHIRP_DB_FAILOVER_WAIT_MS: how long a write that never reached its primary waits for a new one (0: never). */
  readonly failoverWaitMs: number;
}

export const DB_DEFAULTS = {
  maxReplicaLagMs: 1000,
  poolSize: 8,
  poolQueueLimit: 256,
  acquireTimeoutMs: 2000,
  queryTimeoutMs: 5000,
  commitTimeoutMs: 5000,
  failoverWaitMs: 10_000,
} as const;

/**
 * The bootstrap topology (epoch 0) and the application account from the infra
 * env vars. Members are named after the shard config's where they line up.
 * Throws InfraEnvError listing every problem, or when no MySQL URL is set.
 */
export function topologyFromEnv(
  env: Env,
  shardConfig: ShardConfig,
): { topology: LiveTopology; credentials: MysqlCredentials } {
  return fromInfra(parseInfraEnv(env, shardConfig), shardConfig);
}

function fromInfra(
  infra: ReturnType<typeof parseInfraEnv>,
  shardConfig: ShardConfig,
): { topology: LiveTopology; credentials: MysqlCredentials } {
  if (infra.mysql === undefined) {
    throw new InfraEnvError(["MYSQL_URL (or MYSQL_URL_<REPLICA SET> for every replica set, e.g. MYSQL_URL_RS0) is not set"]);
  }
  return {
    topology: {
      keyspace: shardConfig.keyspace,
      epoch: 0,
      replicaSets: infra.mysql.replicaSets,
      shards: shardConfig.shards.map((s) => ({ name: s.name, replicaSet: s.replicaSet, database: s.database })),
      updateTime: new Date().toISOString(),
    },
    credentials: infra.mysql.appUser,
  };
}

/**
 * Reads everything at once; one ConfigError lists every problem. Defaults: the
 * process environment (this is a config module) and the shard config that
 * CHIRP_SHARD_CONFIG names, as the topology manager reads it.
 *
 * CHIRP_SHARD_CONFIG: the shard layout: an environment under `shard-config/`
 * (`local` is `shard-config/local.json`) or the path of a file in that format
 * (for example with other database names, to share MySQL servers with
 * another deployment). Every service, the topology manager and
 * `scripts/migrate.ts` must be given the same one.
 */
export function loadDbConfig(env: Env = process.env, shardConfig: ShardConfig = loadShardConfig(new EnvReader(env).string("CHIRP_SHARD_CONFIG", "local"))): DbConfig {
  const read = new EnvReader(env);
  const knobs = {
    maxReplicaLagMs: read.int("CHIRP_DB_MAX_LAG_MS", DB_DEFAULTS.maxReplicaLagMs, 0, 3_600_000),
    poolSize: read.int("CHIRP_DB_POOL_SIZE", DB_DEFAULTS.poolSize, 1, 256),
    poolQueueLimit: read.int("CHIRP_DB_POOL_QUEUE_LIMIT", DB_DEFAULTS.poolQueueLimit, 0, 100_000),
    acquireTimeoutMs: read.int("CHIRP_DB_ACQUIRE_TIMEOUT_MS", DB_DEFAULTS.acquireTimeoutMs, 1, 600_000),
    queryTimeoutMs: read.int("CHIRP_DB_QUERY_TIMEOUT_MS", DB_DEFAULTS.queryTimeoutMs, 1, 3_600_000),
    commitTimeoutMs: read.int("CHIRP_DB_COMMIT_TIMEOUT_MS", DB_DEFAULTS.commitTimeoutMs, 1, 3_600_000),
    failoverWaitMs: read.int("CHIRP_DB_FAILOVER_WAIT_MS", DB_DEFAULTS.failoverWaitMs, 0, 600_000),
  };
  const problems: string[] = [];
  let fromEnv: ReturnType<typeof topologyFromEnv> | undefined;
  let natsUrl: string | undefined;
  try {
    const infra = parseInfraEnv(env, shardConfig);
    natsUrl = infra.natsUrl;
    fromEnv = fromInfra(infra, shardConfig);
  } catch (err) {
    if (!(err instanceof InfraEnvError)) throw err;
    problems.push(...err.problems);
  }
  read.done(problems);
  if (fromEnv === undefined) throw new ConfigError(problems);
  return { ...fromEnv, natsUrl, ...knobs };
}
