/**
 * A private cluster and the system for one bench run, as `npm start` and the
 * end-to-end tests start them (startLocalCluster, launchSystem with the
 * topology manager), plus what the bench itself needs: a shard router and a
 * Redis connection of its own (bulk load, checks), the token signer of the
 * launch's keys, and every process's pid. The services' output goes to a log
 * file (the path is printed) so the progress lines stay readable.
 * relaunch() swaps the single process for the mesh (or back) over the same
 * servers and data, so both are measured in one run.
 */
import { closeSync, mkdirSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { createTokenSigner, generateTokenKeys, type TokenSigner } from "../../lib/auth/token.js";
import { startLocalCluster, type RunningInfra } from "../../devcluster/index.js";
import { launchSystem, serviceInfraEnv, topologyInfraEnv, type Mesh } from "../../devcluster/launch.js";
import { loadShardConfig } from "../../lib/shard/shard-config.js";
import { topologyFromEnv } from "../../lib/shard/config.js";
import { createShardRouter, type ShardRouter } from "../../lib/shard/router.js";

const PROFILE_PRELOAD = fileURLToPath(new URL("./cpu-profile-preload.mjs", import.meta.url));

export type SystemMode = "single" | "mesh";

export interface BenchCluster {
  readonly infra: RunningInfra;
  /** The system running now (its mode is `mesh.mode`). */
  readonly mesh: Mesh;
  readonly router: ShardRouter;
  readonly redis: Redis;
  readonly signer: TokenSigner;
  /** MYSQL_URL_*, REDIS_URL, NATS_URL with the application account (for the floor). */
  readonly env: Record<string, string>;
  readonly logPath: string;
  /** Chirp's processes (see meshPids), each MySQL member, redis, nats. */
  pids(): Record<string, number>;
  /** Chirp's processes: `chirp` (the single process) or the gateway and each service; the topology manager. */
  meshPids(): Record<string, number>;
  /** Stops the running system and starts it in `mode` over the same servers and data. */
  relaunch(mode: SystemMode): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchCluster(opts: { say: (line: string) => void; profileDir?: string; mode: SystemMode; processes?: number }): Promise<BenchCluster> {
  let infra: RunningInfra | undefined;
  let mesh: Mesh | undefined;
  let router: ShardRouter | undefined;
  let redis: Redis | undefined;
  const logDir = join(tmpdir(), "chirp-bench");
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `mesh-${process.pid}-${Date.now()}.log`);
  const logFd = openSync(logPath, "a");
  const stop = async (): Promise<void> => {
    redis?.disconnect();
    await router?.close().catch(() => {});
    await mesh?.stop().catch(() => {});
    await infra?.stop().catch(() => {});
    try {
      closeSync(logFd);
    } catch {
      // closed already
    }
  };
  try {
    infra = await startLocalCluster({ ephemeral: true, log: () => {} });
    const env = serviceInfraEnv(infra);
    const keys = generateTokenKeys();
    const launch = (mode: SystemMode): Promise<Mesh> =>
      launchSystem({
        mode,
        ...(opts.processes === undefined ? {} : { processes: opts.processes }),
        env: {
          ...env,
          LOG_LEVEL: "warn",
          // Node refuses --cpu-prof in NODE_OPTIONS; a preload starts and stops V8's profiler on SIGUSR2 instead.
          ...(opts.profileDir === undefined
            ? {}
            : { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${PROFILE_PRELOAD}`.trim(), CHIRP_BENCH_PROFILE_DIR: opts.profileDir }),
        },
        topologyEnv: topologyInfraEnv(infra!, loadShardConfig("local")),
        ports: "ephemeral",
        stdio: logFd,
        tokenKeys: { privateKey: keys.privateKey, publicKeys: [keys.publicKey] },
      });
    opts.say(`cluster up; starting the ${opts.mode === "single" ? "single process" : "mesh"} (services log to ${logPath})`);
    mesh = await launch(opts.mode);
    // The bulk load's 1000-row INSERTs can outlast the services' 5 s statement timeout on a busy machine.
    router = await createShardRouter({ ...topologyFromEnv(env, loadShardConfig("local")), queryTimeoutMs: 120_000, acquireTimeoutMs: 60_000 });
    redis = new Redis(infra.redisUrl, { maxRetriesPerRequest: 1 });
    const i = infra;
    const meshPids = (): Record<string, number> => {
      const m = mesh!;
      return {
        ...(m.mode === "single"
          ? { chirp: m.gatewayPid, ...Object.fromEntries((m.workerPids ?? []).map((pid, i) => [`chirp-${i + 1}`, pid])) }
          : { gateway: m.gatewayPid, ...Object.fromEntries(Object.entries(m.services).map(([name, s]) => [name, s.pid])) }),
        ...(m.topology === undefined ? {} : { topology: m.topology.pid }),
      };
    };
    return {
      infra,
      get mesh() {
        return mesh!;
      },
      router,
      redis,
      signer: createTokenSigner(keys.privateKey),
      env,
      logPath,
      meshPids,
      pids: () => ({ ...meshPids(), ...Object.fromEntries(i.processes.map((p) => [p.name, p.pid])) }),
      async relaunch(mode) {
        opts.say(`stopping the ${mesh!.mode === "single" ? "single process" : "mesh"}; starting the ${mode === "single" ? "single process" : "mesh"}`);
        const old = mesh;
        mesh = undefined;
        await old?.stop();
        mesh = await launch(mode);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
