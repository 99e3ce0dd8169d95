// The local cluster used by `npm start` and the integration tests: private
// mariadbd replica sets, redis-server and nats-server under a data dir, or
// servers given by URL. See README.md beside this file.
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadShardConfig, type ShardConfig } from "../lib/shard/shard-config.js";
import { findBinary } from "./binaries.js";
import { parseInfraEnv, type InfraEnv } from "../lib/shard/infra-env.js";
import { startLocalMysql, type LocalMysql } from "./local-mysql.js";
import { acquireDataDirLock, type DataDirLock } from "./lock.js";
import { migrate, type MigrateResult } from "../lib/db/migrate.js";
import { startNats, type NatsAccount, type RunningNats } from "./nats.js";
import { defaultClusterLog, errMessage, type ClusterLog } from "./process.js";
import { startReaper, type Reaper } from "./reaper.js";
import { startRedis, type RunningRedis } from "./redis.js";
import type { MysqlInfo } from "../lib/shard/types.js";
import type { InfraInfo } from "./types.js";

export type { ClusterLog } from "./process.js";
export type * from "./types.js";
export { MissingBinaryError, findBinary, type ServerBinary } from "./binaries.js";
export { DataDirLockedError, acquireDataDirLock, type DataDirLock } from "./lock.js";
export { InfraEnvError, parseMysqlUrl, replicaSetEnvVar } from "../lib/shard/infra-env.js";
export {
  DEFAULT_MIGRATIONS_DIR,
  MigrationError,
  loadMigrations,
  migrate,
  migrateDatabase,
  type Migration,
  type MigrateOptions,
  type MigrateResult,
} from "../lib/db/migrate.js";
export { ServerStartError } from "./process.js";
export type { NatsAccount } from "./nats.js";
export { grantAppDatabases } from "./mariadb.js";
export { freePort } from "./ports.js";

export const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
export const DEFAULT_DATA_DIR = join(REPO_ROOT, ".data", "local");

export interface ResolveInfraOptions {
  /** Where MYSQL_URL, REDIS_URL, NATS_URL and PATH are read; default process.env. */
  env?: InfraEnv;
  /** Data for locally started servers; default .data/local, or a fresh .data/test-* when ephemeral. */
  dataDir?: string;
  /** Throwaway cluster: relaxed fsync, data dir deleted by stop(). */
  ephemeral?: boolean;
  log?: ClusterLog;
  /** Default: shard-config/local.json. */
  shardConfig?: ShardConfig;
  /** Default: lib/db/migrations. */
  migrationsDir?: string;
  /** Extra accounts on a local nats-server (nats.ts), e.g. one per test file sharing the cluster. */
  natsAccounts?: readonly NatsAccount[];
  /** Logical databases of a local redis-server (default 16). */
  redisDatabases?: number;
}

export interface StartLocalClusterOptions extends Omit<ResolveInfraOptions, "env"> {
  /**
   * Replicas per replica set, at most the shard config's (local.json has two:
   * a spare, so one loss keeps semi-sync on, decision 24). Default 1: a test
   * cluster where nothing kills a member needs no spare, and every mariadbd
   * costs start-up time and memory. Tests that kill members, and benchmarks,
   * ask for 2.
   */
  replicasPerSet?: number;
}

export interface ClusterProcess {
  name: string;
  pid: number;
}

export interface RunningInfra extends InfraInfo {
  /** The data dir in use, or null when every server came from a URL. */
  readonly dataDir: string | null;
  /** The server processes this call started (empty when all came from URLs); current pids after a restart. */
  readonly processes: readonly ClusterProcess[];
  /**
   * Starts a local MySQL member again on its old address (after a crash or a
   * kill in a test), read_only and not replicating: the topology manager gives
   * it its role. Stops it first if it still runs.
   */
  restartMysqlMember(name: string): Promise<ClusterProcess>;
  /**
   * Starts the local nats-server again on its old port with its JetStream
   * store (after a kill in a test), so clients reconnect to the same URL.
   * Stops it first if it still runs.
   */
  restartNats(): Promise<ClusterProcess>;
  readonly migrations: MigrateResult;
  /** The plain, serialisable part (what JSON.stringify gives). */
  toJSON(): InfraInfo;
  /** Stops what was started, in reverse order; releases the lock. Idempotent. */
  stop(): Promise<void>;
}

/** A fresh, unique data dir for a test cluster (under .data/, git-ignored). */
export function newTestDataDir(): string {
  return join(REPO_ROOT, ".data", `test-${randomBytes(6).toString("hex")}`);
}

/** Every server local and private, whatever the environment says. */
export function startLocalCluster(opts: StartLocalClusterOptions = {}): Promise<RunningInfra> {
  const { replicasPerSet = 1, ...rest } = opts;
  const config = withReplicasPerSet(rest.shardConfig ?? loadShardConfig("local"), replicasPerSet);
  // PATH is the one thing still read, to find the server binaries.
  return resolveInfra({ ...rest, shardConfig: config, env: { PATH: process.env["PATH"] } });
}

/** The config with each replica set cut to its primary and its first `n` replicas. */
export function withReplicasPerSet(config: ShardConfig, n: number): ShardConfig {
  return {
    ...config,
    replicaSets: config.replicaSets.map((rs) => {
      let kept = 0;
      return { ...rs, members: rs.members.filter((m) => m.role === "primary" || kept++ < n) };
    }),
  };
}

/**
 * Uses MYSQL_URL / MYSQL_URL_<RS>, REDIS_URL and NATS_URL where set, starts
 * local servers for the rest, and brings every shard database up to date.
 */
export async function resolveInfra(opts: ResolveInfraOptions = {}): Promise<RunningInfra> {
  const started = Date.now();
  const env = opts.env ?? process.env;
  const log = opts.log ?? defaultClusterLog;
  const ephemeral = opts.ephemeral ?? false;
  const config = opts.shardConfig ?? loadShardConfig("local");
  const external = parseInfraEnv(env, config);

  const needMysql = external.mysql === undefined;
  const needRedis = external.redisUrl === undefined;
  const needNats = external.natsUrl === undefined;
  let dataDir: string | null = null;
  let lock: DataDirLock | undefined;
  let reaper: Reaper | undefined;
  let mysql: LocalMysql | undefined;
  let redis: RunningRedis | undefined;
  let nats: RunningNats | undefined;
  const releaseOnExit = (): void => lock?.release();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const errors: unknown[] = [];
      const attempt = async (fn: () => Promise<void>): Promise<void> => {
        await fn().catch((err: unknown) => void errors.push(err));
      };
      await attempt(async () => nats?.proc.stop());
      await attempt(async () => redis?.proc.stop());
      await attempt(async () => mysql?.stop());
      reaper?.close();
      // Delete a throwaway dir while still holding its lock, then let go.
      if (ephemeral && dataDir !== null) await attempt(() => rm(dataDir as string, { recursive: true, force: true }));
      lock?.release();
      process.off("exit", releaseOnExit);
      if (dataDir !== null) log("stopped");
      if (errors.length > 0) throw new AggregateError(errors, `stopping the cluster: ${errors.map(errMessage).join("; ")}`);
    })();
    return stopping;
  };

  try {
    if (needMysql || needRedis || needNats) {
      // Missing binaries fail before anything starts.
      const path = env["PATH"];
      const bins = {
        mariadbd: needMysql ? findBinary("mariadbd", { path }) : "",
        installDb: needMysql ? findBinary("mariadb-install-db", { path }) : "",
        redis: needRedis ? findBinary("redis-server", { path }) : "",
        nats: needNats ? findBinary("nats-server", { path }) : "",
      };
      const dir = resolve(opts.dataDir ?? (ephemeral ? newTestDataDir() : DEFAULT_DATA_DIR));
      lock = acquireDataDirLock(dir);
      // Only a dir we hold is ours to clean up (an ephemeral one is deleted by stop()).
      dataDir = dir;
      process.once("exit", releaseOnExit);
      reaper = startReaper();
      log(`data dir ${dataDir}`);

      const parts = await Promise.allSettled([
        needMysql
          ? startLocalMysql({
              config,
              dir: join(dir, "mysql"),
              bins: { mariadbd: bins.mariadbd, installDb: bins.installDb },
              log,
              reaper,
              ephemeral,
            }).then((m) => void (mysql = m))
          : undefined,
        needRedis
          ? startRedis({ binary: bins.redis, dir: join(dir, "redis"), log, reaper, databases: opts.redisDatabases }).then((r) => void (redis = r))
          : undefined,
        needNats
          ? startNats({ binary: bins.nats, dir: join(dir, "nats"), log, reaper, accounts: opts.natsAccounts }).then((n) => void (nats = n))
          : undefined,
      ]);
      const failed = parts.find((p): p is PromiseRejectedResult => p.status === "rejected");
      if (failed) throw failed.reason;
    }

    const mysqlInfo: MysqlInfo = {
      keyspace: config.keyspace,
      replicaSets: mysql?.replicaSets ?? external.mysql?.replicaSets ?? [],
      shards: config.shards.map((s) => ({ name: s.name, replicaSet: s.replicaSet, database: s.database })),
      appUser: (mysql?.appUser ?? external.mysql?.appUser)!,
      adminUser: (mysql?.adminUser ?? external.mysql?.adminUser)!,
    };
    const migrations = await migrate({
      mysql: mysqlInfo,
      log,
      ...(opts.migrationsDir === undefined ? {} : { dir: opts.migrationsDir }),
    });
    const info: InfraInfo = {
      mysql: mysqlInfo,
      redisUrl: redis?.url ?? external.redisUrl ?? "",
      natsUrl: nats?.url ?? external.natsUrl ?? "",
    };
    const processes = (): ClusterProcess[] => [
      ...(mysql?.members.map((m) => ({ name: m.spec.name, pid: m.proc.pid })) ?? []),
      ...(redis ? [{ name: "redis", pid: redis.proc.pid }] : []),
      ...(nats ? [{ name: "nats", pid: nats.proc.pid }] : []),
    ];
    const localMysql = mysql;
    const sources = [
      needMysql ? "mysql local" : "mysql from MYSQL_URL",
      needRedis ? "redis local" : "redis from REDIS_URL",
      needNats ? "nats local" : "nats from NATS_URL",
    ];
    log(`cluster ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${sources.join(", ")})`);
    return {
      ...info,
      dataDir,
      get processes() {
        return processes();
      },
      restartMysqlMember: async (name) => {
        if (!localMysql) throw new Error("MySQL is not local: nothing to restart");
        const m = await localMysql.restartMember(name);
        return { name: m.spec.name, pid: m.proc.pid };
      },
      restartNats: async () => {
        const old = nats;
        if (old === undefined || dataDir === null) throw new Error("NATS is not local: nothing to restart");
        await old.proc.stop();
        const port = Number(new URL(old.url).port);
        nats = await startNats({
          binary: findBinary("nats-server", { path: env["PATH"] }),
          dir: join(dataDir, "nats"),
          log,
          reaper,
          port,
          accounts: opts.natsAccounts,
        });
        return { name: "nats", pid: nats.proc.pid };
      },
      migrations,
      toJSON: () => structuredClone(info),
      stop,
    };
  } catch (err) {
    await stop().catch((stopErr: unknown) => log(`cleanup after failed start: ${errMessage(stopErr)}`));
    throw err;
  }
}

export interface StopOnSignalsOptions {
  log?: ClusterLog;
  signals?: readonly NodeJS.Signals[];
}

/**
 * Stops `cluster` on SIGINT/SIGTERM, then exits (0 after a clean stop). A
 * second signal exits at once; the watchdog still stops the servers. Returns a
 * function that removes the handlers.
 */
export function stopOnSignals(cluster: { stop(): Promise<void> }, opts: StopOnSignalsOptions = {}): () => void {
  const log = opts.log ?? defaultClusterLog;
  const signals = opts.signals ?? ["SIGINT", "SIGTERM"];
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal}: stopping...`);
    cluster.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log(`stop failed: ${errMessage(err)}`);
        process.exit(1);
      },
    );
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}

/** Reads the serialised form back (e.g. handed to a child process in an env var). */
export function parseInfraJson(text: string): InfraInfo {
  const v = JSON.parse(text) as Partial<InfraInfo>;
  const m = v.mysql;
  if (
    !m ||
    typeof v.redisUrl !== "string" ||
    typeof v.natsUrl !== "string" ||
    !Array.isArray(m.replicaSets) ||
    !Array.isArray(m.shards) ||
    typeof m.appUser?.user !== "string" ||
    typeof m.adminUser?.user !== "string"
  ) {
    throw new Error("not a serialised cluster description");
  }
  return v as InfraInfo;
}
