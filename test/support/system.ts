// The one fixture for tests that need the running system.
//
//   const system = await startSystem({ env: { CHIRP_TIMELINE_MAX_ENTRIES: "30" } });
//   ... system.mesh.gatewayUrl, system.infra.redisUrl, system.router ...
//   await system.stop();
//
// By default a file takes a tenant of the cluster the run shares (one per
// `npm test`, started by global-setup.ts): four shard databases of its own on
// the shared replica sets, its own Redis database and its own NATS account
// (subjects, the event stream, durable consumers and KV buckets are all per
// account), so files run side by side and never see each other's data. A file
// that kills, freezes or restarts servers asks for `cluster: "own"` and gets a
// private cluster it may break.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import { inject } from "vitest";
import {
  REPO_ROOT,
  grantAppDatabases,
  migrate,
  startLocalCluster,
  type InfraInfo,
  type RunningInfra,
  type StartLocalClusterOptions,
} from "../../devcluster/index.js";
import type { Env } from "../../lib/config.js";
import { launchSystem, serviceInfraEnv, topologyInfraEnv, type LaunchOptions, type Mesh } from "../../devcluster/launch.js";
import { loadShardConfig, type ShardConfig } from "../../lib/shard/shard-config.js";
import { topologyFromEnv } from "../../lib/shard/config.js";
import { createShardRouter, type ShardRouter } from "../../lib/shard/router.js";
import { TENANTS, type SharedClusterInfo } from "./global-setup.js";

export interface SystemOptions {
  /** "shared" (default): a tenant of the run's cluster; "own": a private cluster this file may break. */
  readonly cluster?: "shared" | "own";
  /** Options of an own cluster. */
  readonly clusterOptions?: StartLocalClusterOptions;
  /** Start the system (topology manager, every service, the gateway)? Default true. */
  readonly mesh?: boolean;
  /**
   * "single" (default): every service and the gateway in one process, as
   * `npm start` runs them; "mesh": a process per service (files that test
   * the mesh itself, or kill one service).
   */
  readonly mode?: LaunchOptions["mode"];
  /** Single mode: processes behind the same ports (`--processes`). */
  readonly processes?: number;
  /** Environment of every mesh process, over the infra URLs (LOG_LEVEL defaults to warn). */
  readonly env?: Env;
  /** Environment of the topology manager only, over its infra URLs. */
  readonly topologyEnv?: Env;
  /** Passed on to launchSystem. */
  readonly instances?: LaunchOptions["instances"];
  readonly stdio?: LaunchOptions["stdio"];
  readonly tokenKeys?: LaunchOptions["tokenKeys"];
  /** The mesh secret (CHIRP_MESH_SECRET), for tests that make or forge caller assertions. */
  readonly meshSecret?: string;
  /** A shard router for the test's own look at MySQL (application account)? Default true. */
  readonly router?: boolean;
}

/** Infra as a test sees it: its tenant's databases, Redis and NATS, or an own cluster. */
export type TestInfra = InfraInfo & {
  readonly shardConfig: ShardConfig;
  /** The own cluster (restart, processes); undefined for a tenant of the shared one. */
  readonly own: RunningInfra | undefined;
};

export interface TestSystem {
  readonly infra: TestInfra;
  /** What a service process gets: the application account's URLs and CHIRP_SHARD_CONFIG. */
  readonly env: Record<string, string>;
  /** The running system (one process or the mesh); throws when started with `mesh: false`. */
  readonly mesh: Mesh;
  /** A shard router over the file's databases; throws when started with `router: false`. */
  readonly router: ShardRouter;
  /** Stops what this file started, in reverse order (the shared cluster stays for other files). */
  stop(): Promise<void>;
}

// Failure detection of a tenant's topology manager: a shared cluster is never
// broken on purpose, so a manager slowed by a loaded machine must not take a
// slow probe for a dead primary and fail over under every other file, and
// need not probe four times a second (its heartbeats, which let replicas
// serve reads, keep their pace).
const SHARED_TOPOLOGY_ENV = { CHIRP_TOPOLOGY_FAILURES: "20", CHIRP_TOPOLOGY_PROBE_MS: "1000", CHIRP_TOPOLOGY_PROBE_TIMEOUT_MS: "5000" };

export async function startSystem(options: SystemOptions = {}): Promise<TestSystem> {
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  };
  try {
    const infra = options.cluster === "own" ? await ownCluster(options.clusterOptions) : await tenantOfSharedCluster();
    cleanups.push(() => infra.cleanup());
    const env = serviceInfraEnv(infra.infra);
    let mesh: Mesh | undefined;
    if (options.mesh ?? true) {
      mesh = await launchSystem({
        mode: options.mode ?? "single",
        ...(options.processes === undefined ? {} : { processes: options.processes }),
        env: { ...env, LOG_LEVEL: "warn", ...options.env },
        topologyEnv: {
          ...topologyInfraEnv(infra.infra, infra.infra.shardConfig),
          ...(options.cluster === "own" ? {} : SHARED_TOPOLOGY_ENV),
          ...options.topologyEnv,
        },
        ports: "ephemeral",
        // Bundled once for the run; a file outside the system project bundles its own.
        ...(sharedCluster() === undefined ? {} : { entries: sharedCluster()!.bundles }),
        ...(options.instances === undefined ? {} : { instances: options.instances }),
        ...(options.stdio === undefined ? {} : { stdio: options.stdio }),
        ...(options.tokenKeys === undefined ? {} : { tokenKeys: options.tokenKeys }),
        ...(options.meshSecret === undefined ? {} : { meshSecret: options.meshSecret }),
      });
      const m = mesh;
      cleanups.push(() => m.stop());
    }
    let router: ShardRouter | undefined;
    if (options.router ?? true) {
      router = await createShardRouter(topologyFromEnv(env, infra.infra.shardConfig));
      const r = router;
      cleanups.push(() => r.close());
    }
    return {
      infra: infra.infra,
      env,
      get mesh(): Mesh {
        if (mesh === undefined) throw new Error("this system was started without a mesh");
        return mesh;
      },
      get router(): ShardRouter {
        if (router === undefined) throw new Error("this system was started without a router");
        return router;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** What the run's globalSetup provided; undefined outside the system project. */
function sharedCluster(): SharedClusterInfo | undefined {
  return inject("chirpSharedCluster") as SharedClusterInfo | undefined;
}

async function ownCluster(options: StartLocalClusterOptions = {}): Promise<{ infra: TestInfra; cleanup(): Promise<void> }> {
  const own = await startLocalCluster({ ephemeral: true, log: () => {}, ...options });
  const shardConfig = options.shardConfig ?? loadShardConfig("local");
  return { infra: Object.assign(own.toJSON(), { shardConfig, own }), cleanup: () => own.stop() };
}

/**
 * The next free tenant of the shared cluster: a counter in its Redis
 * database 0 hands each file its number i; the file's shard databases are
 * the local ones prefixed `t<i>_`, its Redis database is i and its NATS
 * account is user t<i>.
 */
async function tenantOfSharedCluster(): Promise<{ infra: TestInfra; cleanup(): Promise<void> }> {
  const shared = sharedCluster();
  if (shared === undefined) throw new Error("no shared cluster: this file must run in the vitest project whose globalSetup starts it");
  const counter = new Redis(shared.infra.redisUrl, { maxRetriesPerRequest: 1 });
  let tenant: number;
  try {
    tenant = await counter.incr("chirp:test:tenants");
  } finally {
    counter.disconnect();
  }
  if (tenant > TENANTS) throw new Error(`the shared cluster has ${TENANTS} tenants and all are taken`);
  const account = shared.accounts[tenant - 1]!;

  const local = loadShardConfig("local");
  const prefix = `t${tenant}_`;
  const shardConfig: ShardConfig = { ...local, shards: local.shards.map((s) => ({ ...s, database: `${prefix}${s.database}` })) };
  const dir = join(REPO_ROOT, ".data", "tenants");
  await mkdir(dir, { recursive: true });
  const shardConfigFile = join(dir, `${process.pid}-t${tenant}.json`);
  await writeFile(shardConfigFile, JSON.stringify(shardConfig, null, 2));

  const mysql = { ...shared.infra.mysql, shards: shardConfig.shards.map((s) => ({ name: s.name, replicaSet: s.replicaSet, database: s.database })) };
  await migrate({ mysql });
  await grantAppDatabases(
    mysql.replicaSets.flatMap((rs) => [rs.primary, ...rs.replicas]),
    mysql.adminUser,
    mysql.appUser,
    mysql.shards.map((s) => s.database),
  );
  const nats = new URL(shared.infra.natsUrl);
  nats.username = account.user;
  nats.password = account.password;
  const infra: TestInfra = {
    mysql,
    redisUrl: `${shared.infra.redisUrl}/${tenant}`,
    natsUrl: nats.toString().replace(/\/$/, ""),
    shardConfigFile,
    shardConfig,
    own: undefined,
  };
  return { infra, cleanup: () => rm(shardConfigFile, { force: true }) };
}
