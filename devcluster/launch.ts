import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatServiceKeys, generateMeshSecret, parseMeshSecrets } from "../lib/auth/assertion.js";
import { generateTokenKeys } from "../lib/auth/token.js";
import { generateVapidKey } from "../lib/push/vapid.js";
import { freePort } from "./ports.js";
import type { InfraInfo } from "./types.js";
import { bundleEntries, bundlePath, makeOwnBundleDir } from "./launch-bundle.js";
import { replicaSetEnvVar } from "../lib/shard/infra-env.js";
import type { Env } from "../lib/config.js";
import type { ShardConfig } from "../lib/shard/shard-config.js";
import { DEFAULT_GATEWAY_METRICS_PORT, DEFAULT_GATEWAY_PORT, DEFAULT_PORTS, MULTI_SERVICE_PORTS, SERVICE_NAMES, envName, type ServiceName } from "../lib/mesh.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export interface LaunchOptions {
  /**
   * "single" (default): every service and the gateway in one process
   * (`--target all`); "mesh": each service its own process, and the gateway.
   */
  readonly mode?: "single" | "mesh";
  /** Single mode: processes of `--target all` behind the same ports (`--processes`, default 1). */
  readonly processes?: number;
  /** Environment for every process: infra URLs, LOG_LEVEL, ... (merged over process.env). */
  readonly env: Env;
  /** "default": the documented ports (50051..., 8080); "ephemeral": any free port (tests). */
  readonly ports: "default" | "ephemeral";
  /**
   * Where child output goes; defaults to this process's stdout/stderr. A
   * number is an open file descriptor that every child's stdout and stderr
   * are written to (tests read the logs back).
   */
  readonly stdio?: "inherit" | "ignore" | number;
  readonly readyTimeoutMs?: number;
  /**
   * Environment of the topology manager (topologyInfraEnv: the ADMIN account),
   * started before the services; omitted: no manager.
   */
  readonly topologyEnv?: Env;
  /** With topologyEnv: a second topology manager, standing by for the first's lease (npm start runs one). */
  readonly topologyStandby?: boolean;
  /**
   * Session token keys: the user service gets the private key
   * (CHIRP_TOKEN_PRIVATE_KEY), the gateway the public ones
   * (CHIRP_TOKEN_PUBLIC_KEYS: several during a rotation). No other process
   * sees either. Omitted: a fresh pair for this launch (tokens then die with it).
   */
  readonly tokenKeys?: { readonly privateKey: string; readonly publicKeys: readonly string[] };
  /**
   * The VAPID key (PKCS#8 PEM) that signs Web Push requests: the notification
   * service gets it (CHIRP_PUSH_VAPID_PRIVATE_KEY), no other process.
   * Omitted: a fresh one for this launch (subscriptions then die with it).
   */
  readonly vapidKey?: string;
  /**
   * The mesh secret (CHIRP_MESH_SECRET, decision 22): the gateway (and the
   * single process) get it; each service process gets only its own key
   * derived from it (CHIRP_MESH_KEYS). Omitted: a fresh one for this launch.
   */
  readonly meshSecret?: string;
  /**
   * Processes per service (default 1; the mesh only). Every caller's CHIRP_<SERVICE>_ADDR
   * lists all of a service's instances (round-robin, UNAVAILABLE retried on
   * another). With "default" ports only the first instance gets the
   * documented ones; the others take free ports.
   */
  readonly instances?: Partial<Record<ServiceName, number>>;
  /**
   * How processes run their entry: a directory of bundles already made by
   * bundleMeshEntries() (a test run builds them once for every file), or
   * "tsx" to run the .ts entries under the tsx loader. Default: bundles made
   * once per launching process in a temp dir (launch-bundle.ts says why).
   */
  readonly entries?: string | "tsx";
}

export interface RunningService {
  readonly name: ServiceName;
  readonly pid: number;
  readonly grpcPort: number;
  readonly metricsPort: number;
}

/**
 * What launchSystem started. In a single process every service's entry
 * names that one process (its pid, its one gRPC and metrics port).
 */
export interface Mesh {
  readonly mode: "single" | "mesh";
  /** Single mode with several processes: the workers' pids (the primary's is gatewayPid). */
  readonly workerPids?: readonly number[];
  /** The first instance of each service. */
  readonly services: Readonly<Record<ServiceName, RunningService>>;
  /** Every instance of each service, in the order of CHIRP_<SERVICE>_ADDR; current pids after a restart. */
  readonly instances: Readonly<Record<ServiceName, readonly RunningService[]>>;
  readonly gatewayUrl: string;
  /**
   * The gateway's Prometheus metrics, which its public port does not serve
   * (CHIRP_GATEWAY_PUBLIC_METRICS): in a single process, that process's
   * metrics port (every service's and the gateway's); in the mesh, the
   * gateway process's own (CHIRP_GATEWAY_METRICS_PORT).
   */
  readonly gatewayMetricsUrl: string;
  readonly gatewayPid: number;
  /** The topology manager, when one was started, and its standby when one was asked for (topologyStandby). */
  readonly topology?: { readonly pid: number; readonly metricsPort: number; readonly epoch: number; readonly standby?: { readonly pid: number; readonly metricsPort: number } };
  /** Environment a further process needs to reach the mesh (CHIRP_*_ADDR). */
  readonly addressEnv: Readonly<Record<string, string>>;
  /**
   * Sends an instance (default the first) `signal` (default SIGKILL) and
   * resolves once it has exited. In a single process: that process.
   */
  killService(name: ServiceName, index?: number, signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts an instance again on its old gRPC port with its old environment
   * (stopping it first if it still runs: SIGTERM, then SIGKILL), and resolves
   * once it is ready. Callers reconnect to the same address.
   */
  restartService(name: ServiceName, index?: number): Promise<RunningService>;
  /** Stops the gateway, then the services; each gets SIGTERM and, after a grace period, SIGKILL. */
  stop(): Promise<void>;
}

/**
 * Starts the topology manager (when asked), then the system in `options.mode`:
 * one process, or the mesh. The same code serves `npm start`, the benchmarks
 * and the end-to-end tests.
 */
export async function launchSystem(options: LaunchOptions): Promise<Mesh> {
  const children: ChildProcess[] = [];
  const run = await entryRunner(options.entries);
  const stopAll = async (): Promise<void> => {
    for (const child of [...children].reverse()) await stopChild(child);
  };
  try {
    // The manager first: it publishes the live topology the services' routers follow.
    let topology: Mesh["topology"];
    if (options.topologyEnv !== undefined) {
      const spawnTopology = (entry: string, opts: LaunchOptions, extra: Record<string, string>) => spawnProcess(run(entry), opts, extra);
      const started = await startTopology(spawnTopology, { ...options, topologyEnv: options.topologyEnv }, "9110");
      children.push(started.child);
      topology = started.topology;
      if (options.topologyStandby === true) {
        // A second manager that waits for the leader's lease (services/topology/leadership.ts).
        const standby = await startTopology(spawnTopology, { ...options, topologyEnv: options.topologyEnv }, "9111");
        children.push(standby.child);
        topology = { ...topology, standby: { pid: standby.topology.pid, metricsPort: standby.topology.metricsPort } };
      }
    }
    const launching: Launching = {
      options,
      children,
      spawnEntry: (entry, extra, args = []) => spawnProcess([...run(entry), ...args], options, extra),
      keys: options.tokenKeys ?? ephemeralTokenKeys(),
      vapidKey: options.vapidKey ?? generateVapidKey(),
      meshSecret: options.meshSecret ?? generateMeshSecret(),
      topology,
      stopAll,
    };
    return (options.mode ?? "single") === "single" ? await launchSingle(launching) : await launchMesh(launching);
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** What both modes start from: the topology manager already running, the token keys, the children to stop. */
interface Launching {
  readonly options: LaunchOptions;
  /** Every process started, in order; stopAll stops them in reverse. */
  readonly children: ChildProcess[];
  readonly spawnEntry: (entry: string, extra: Record<string, string>, args?: readonly string[]) => ChildProcess;
  readonly keys: { readonly privateKey: string; readonly publicKeys: readonly string[] };
  readonly vapidKey: string;
  readonly meshSecret: string;
  readonly topology: Mesh["topology"];
  readonly stopAll: () => Promise<void>;
}

/** Spawns a topology manager and waits until it leads (its first topology published) or stands by. */
async function startTopology(
  spawnEntry: (entry: string, opts: LaunchOptions, extra: Record<string, string>) => ChildProcess,
  options: LaunchOptions & { topologyEnv: Env },
  defaultMetricsPort: string,
): Promise<{ child: ChildProcess; topology: NonNullable<Mesh["topology"]> }> {
  const child = spawnEntry("services/topology/main.ts", { ...options, env: { ...options.env, ...options.topologyEnv } }, {
    CHIRP_TOPOLOGY_METRICS_PORT: options.ports === "default" ? (defaultMetricsPort === "9110" ? (options.topologyEnv.CHIRP_TOPOLOGY_METRICS_PORT ?? "9110") : defaultMetricsPort) : "0",
  });
  try {
    const ready = await waitReady(child, "topology", options.readyTimeoutMs);
    return { child, topology: { pid: child.pid!, metricsPort: Number(ready.metricsPort), epoch: Number(ready.epoch) } };
  } catch (err) {
    await stopChild(child);
    throw err;
  }
}

/**
 * Every service and the gateway in one process (services/main.ts, `--target
 * all`), on ports picked here so a restart takes the same ones.
 */
async function launchSingle({ options, children, spawnEntry, keys, vapidKey, meshSecret, topology, stopAll }: Launching): Promise<Mesh> {
  const ephemeral = options.ports === "ephemeral";
  const [grpcPort, metricsPort, gatewayPort] = ephemeral
    ? await Promise.all([freePort(), freePort(), freePort()])
    : [MULTI_SERVICE_PORTS.grpc, MULTI_SERVICE_PORTS.metrics, Number(options.env.CHIRP_GATEWAY_PORT ?? DEFAULT_GATEWAY_PORT)];
  const addressEnv = Object.fromEntries(SERVICE_NAMES.map((name) => [envName.address(name), `127.0.0.1:${grpcPort}`]));
  const start = async (): Promise<{ child: ChildProcess; ready: Ready }> => {
    const child = spawnEntry("services/main.ts", {
      ...addressEnv,
      [TOKEN_PRIVATE_KEY_ENV]: keys.privateKey,
      [VAPID_PRIVATE_KEY_ENV]: vapidKey,
      [MESH_SECRET_ENV]: meshSecret,
      CHIRP_TOKEN_PUBLIC_KEYS: keys.publicKeys.join(""),
      CHIRP_GATEWAY_RATE_EXEMPT_IPS: options.env.CHIRP_GATEWAY_RATE_EXEMPT_IPS ?? "127.0.0.1,::1",
      CHIRP_GRPC_PORT: String(grpcPort),
      CHIRP_METRICS_PORT: String(metricsPort),
      CHIRP_GATEWAY_PORT: String(gatewayPort),
    }, ["--target", "all", ...(options.processes !== undefined && options.processes > 1 ? ["--processes", String(options.processes)] : [])]);
    children.push(child);
    return { child, ready: await waitReady(child, "chirp (all)", options.readyTimeoutMs) };
  };
  let current = await start();
  const host = options.env.CHIRP_GATEWAY_HOST ?? "127.0.0.1";
  const entry = (): RunningService & { name: ServiceName } => ({
    name: "user",
    pid: current.child.pid!,
    grpcPort: Number(current.ready.grpcPort),
    metricsPort: Number(current.ready.metricsPort),
  });
  const services = {} as Record<ServiceName, RunningService>;
  const instances = {} as Record<ServiceName, readonly RunningService[]>;
  const refresh = (): void => {
    for (const name of SERVICE_NAMES) {
      services[name] = { ...entry(), name };
      instances[name] = [services[name]];
    }
  };
  refresh();
  const system: Mesh = {
    mode: "single",
    get workerPids() {
      const pids = current.ready.pids;
      return Array.isArray(pids) ? (pids as number[]) : undefined;
    },
    services,
    instances,
    gatewayUrl: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${gatewayPort}`,
    get gatewayMetricsUrl() {
      return `http://${metricsHost(options.env)}:${current.ready.metricsPort}/metrics`;
    },
    get gatewayPid() {
      return current.child.pid!;
    },
    ...(topology === undefined ? {} : { topology }),
    addressEnv,
    async killService(_name, _index = 0, signal = "SIGKILL") {
      const child = current.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill(signal);
      await exited;
    },
    async restartService(name) {
      const old = current.child;
      await stopChild(old);
      children.splice(children.indexOf(old), 1);
      current = await start();
      refresh();
      return services[name];
    },
    stop: stopAll,
  };
  return system;
}

/**
 * Starts every service as its own process, waits until each reports ready over
 * IPC (so ephemeral ports are known), then starts the gateway pointed at them.
 */
async function launchMesh({ options, children, spawnEntry, keys, vapidKey, meshSecret, topology, stopAll }: Launching): Promise<Mesh> {
  // Services call each other, so every one of them must know every address
  // before any starts: ephemeral gRPC ports are picked here, not by the OS at bind.
  const counts = Object.fromEntries(SERVICE_NAMES.map((name) => [name, instanceCount(options.instances?.[name])])) as Record<ServiceName, number>;
  const grpcPorts = Object.fromEntries(
    await Promise.all(
      SERVICE_NAMES.map(
        async (name) =>
          [
            name,
            await Promise.all(
              Array.from({ length: counts[name] }, (_, i) => (options.ports === "default" && i === 0 ? DEFAULT_PORTS[name].grpc : freePort())),
            ),
          ] as const,
      ),
    ),
  ) as Record<ServiceName, number[]>;
  const addressEnv = Object.fromEntries(
    SERVICE_NAMES.map((name) => [envName.address(name), grpcPorts[name].map((port) => `127.0.0.1:${port}`).join(",")]),
  );
  const startInstance = async (name: ServiceName, index: number): Promise<{ child: ChildProcess; running: RunningService }> => {
    const child = spawnEntry(`services/${name}/main.ts`, {
      ...addressEnv,
      ...(name === "user" ? { [TOKEN_PRIVATE_KEY_ENV]: keys.privateKey } : {}),
      ...(name === "notification" ? { [VAPID_PRIVATE_KEY_ENV]: vapidKey } : {}),
      // Its own key only: it can check the gateway's assertions, not make one.
      CHIRP_MESH_KEYS: formatServiceKeys(parseMeshSecrets(meshSecret), [name]),
      [envName.grpcPort(name)]: String(grpcPorts[name][index]),
      [envName.metricsPort(name)]: String(options.ports === "default" && index === 0 ? DEFAULT_PORTS[name].metrics : 0),
    });
    children.push(child);
    const ready = await waitReady(child, counts[name] > 1 ? `${name}[${index}]` : name, options.readyTimeoutMs);
    return { child, running: { name, pid: child.pid!, grpcPort: Number(ready.grpcPort), metricsPort: Number(ready.metricsPort) } };
  };
  const started = await Promise.all(
    SERVICE_NAMES.flatMap((name) => grpcPorts[name].map(async (_, index) => ({ name, index, ...(await startInstance(name, index)) }))),
  );
  const instances = Object.fromEntries(SERVICE_NAMES.map((name) => [name, [] as RunningService[]])) as Record<ServiceName, RunningService[]>;
  const processes = Object.fromEntries(SERVICE_NAMES.map((name) => [name, [] as ChildProcess[]])) as Record<ServiceName, ChildProcess[]>;
  for (const s of started) {
    instances[s.name][s.index] = s.running;
    processes[s.name][s.index] = s.child;
  }
  const services = Object.fromEntries(SERVICE_NAMES.map((name) => [name, instances[name][0]!])) as Record<ServiceName, RunningService>;
  const instanceOf = (name: ServiceName, index: number): ChildProcess => {
    const child = processes[name][index];
    if (child === undefined) throw new Error(`no instance ${index} of ${name} (${counts[name]} started)`);
    return child;
  };
  const gateway = spawnEntry("gateway/main.ts", {
    ...addressEnv,
    CHIRP_TOKEN_PUBLIC_KEYS: keys.publicKeys.join(""),
    [MESH_SECRET_ENV]: meshSecret,
    // The gateway keeps its rate limits in the same Redis (REDIS_URL). On
    // one machine, loopback is the operator's own tools (`chirp seed` loads
    // ~38,000 follows; the load tests), so it is exempt unless the
    // environment says otherwise ("" exempts nothing).
    CHIRP_GATEWAY_RATE_EXEMPT_IPS: options.env.CHIRP_GATEWAY_RATE_EXEMPT_IPS ?? "127.0.0.1,::1",
    CHIRP_GATEWAY_PORT: String(options.ports === "default" ? (options.env.CHIRP_GATEWAY_PORT ?? DEFAULT_GATEWAY_PORT) : 0),
    CHIRP_GATEWAY_METRICS_PORT: String(options.ports === "default" ? (options.env.CHIRP_GATEWAY_METRICS_PORT ?? DEFAULT_GATEWAY_METRICS_PORT) : 0),
  });
  children.push(gateway);
  const ready = await waitReady(gateway, "gateway", options.readyTimeoutMs);
  const host = options.env.CHIRP_GATEWAY_HOST ?? "127.0.0.1";
  return {
    mode: "mesh",
    services,
    gatewayUrl: `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${ready.port}`,
    gatewayMetricsUrl: `http://${metricsHost(options.env)}:${ready.metricsPort}/metrics`,
    gatewayPid: gateway.pid!,
    ...(topology === undefined ? {} : { topology }),
    instances,
    addressEnv,
    async killService(name, index = 0, signal = "SIGKILL") {
      const child = instanceOf(name, index);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill(signal);
      await exited;
    },
    async restartService(name, index = 0) {
      const old = instanceOf(name, index);
      await stopChild(old);
      const { child, running } = await startInstance(name, index);
      // In the old one's place, so stop() still stops the gateway before the services.
      children.splice(children.indexOf(child), 1);
      children.splice(children.indexOf(old), 1, child);
      processes[name][index] = child;
      instances[name][index] = running;
      if (index === 0) services[name] = running;
      return running;
    },
    stop: stopAll,
  };
}


const TOKEN_PRIVATE_KEY_ENV = "CHIRP_TOKEN_PRIVATE_KEY";
const VAPID_PRIVATE_KEY_ENV = "CHIRP_PUSH_VAPID_PRIVATE_KEY";
const MESH_SECRET_ENV = "CHIRP_MESH_SECRET";

/** Where a metrics server of the launched processes is reached (they listen on CHIRP_BIND_HOST). */
function metricsHost(env: Readonly<Record<string, string | undefined>>): string {
  const host = env.CHIRP_BIND_HOST ?? "127.0.0.1";
  return host === "0.0.0.0" || host === "" ? "127.0.0.1" : host;
}

function instanceCount(n: number | undefined): number {
  if (n === undefined) return 1;
  if (!Number.isInteger(n) || n < 1) throw new Error(`instances: ${n} is not a positive integer`);
  return n;
}

function ephemeralTokenKeys(): { privateKey: string; publicKeys: string[] } {
  const pair = generateTokenKeys();
  return { privateKey: pair.privateKey, publicKeys: [pair.publicKey] };
}

/** Every entry launchMesh starts, relative to the repository root. */
export const MESH_ENTRIES: readonly string[] = [
  "services/topology/main.ts",
  "services/main.ts",
  ...SERVICE_NAMES.map((name) => `services/${name}/main.ts`),
  "gateway/main.ts",
];

/** Bundles every entry (the single process's, the mesh's) into `outDir` (see launch-bundle.ts); pass the dir as LaunchOptions.entries. */
export async function bundleMeshEntries(outDir: string): Promise<string> {
  await bundleEntries(ROOT, MESH_ENTRIES, outDir);
  return outDir;
}

let ownBundles: Promise<string> | undefined;

/**
 * V8's young generation for every process started here: 16 MiB semi-spaces,
 * V8's own default on 64-bit, pinned so that another Node's default cannot
 * change it. A scavenge stops the process for as long as copying what
 * survives takes, and survivors grow with the space: at 64 MiB (this was 64
 * from 2026-12-07 morning, chosen on the garbage collector's share of a CPU
 * profile) the single process's scavenges in the DSB mix took 16-18 ms at the
 * median and 27-31 ms at p90, one every half second, against 6 and 10 ms at
 * 16 MiB, and p99 at 300 requests/s open loop was 70-171 ms in four runs
 * against 54-78 ms, with no change in CPU per request or throughput that
 * machine could show (docs/performance.md, 2026-12-07 evening). On the faster
 * machine of the next session 64 MiB took 5-10 % less CPU per request and the
 * tails overlapped; 16 stays, for the pauses.
 */
export const NODE_FLAGS = ["--max-semi-space-size=16"] as const;

/** Node's arguments for an entry: its bundle (made once per process unless given) or the .ts under tsx. */
async function entryRunner(entries: LaunchOptions["entries"]): Promise<(entry: string) => string[]> {
  if (entries === "tsx") return (entry) => [...NODE_FLAGS, "--import", "tsx", entry];
  let dir = entries;
  if (dir === undefined) {
    ownBundles ??= (async () => {
      // Inside the repository: a bundle finds node_modules the way node does, from where it lies.
      const made = await makeOwnBundleDir(join(ROOT, ".data"));
      process.once("exit", () => rmSync(made, { recursive: true, force: true }));
      return bundleMeshEntries(made);
    })();
    dir = await ownBundles;
  }
  const bundleDir = dir;
  return (entry) => [...NODE_FLAGS, "--enable-source-maps", bundlePath(bundleDir, entry)];
}

function spawnProcess(args: readonly string[], options: LaunchOptions, extra: Record<string, string>): ChildProcess {
  const env: Record<string, string | undefined> = { ...process.env, ...options.env, ...extra };
  // The signing key reaches the user service only (set in `extra`), even when
  // the launcher's own environment carries one.
  if (!(TOKEN_PRIVATE_KEY_ENV in extra)) delete env[TOKEN_PRIVATE_KEY_ENV];
  // The VAPID key likewise reaches the notification service only.
  if (!(VAPID_PRIVATE_KEY_ENV in extra)) delete env[VAPID_PRIVATE_KEY_ENV];
  // The mesh secret reaches the gateway only (and the single process).
  if (!(MESH_SECRET_ENV in extra)) delete env[MESH_SECRET_ENV];
  return spawn(process.execPath, args, {
    cwd: ROOT,
    env,
    // Own process group: a Ctrl-C reaches only the launcher, which then stops
    // the gateway before the services it calls. If the launcher dies, each
    // child sees its IPC channel close and shuts itself down.
    detached: true,
    stdio: [options.stdio === undefined || options.stdio === "inherit" ? "inherit" : "ignore", options.stdio ?? "inherit", options.stdio ?? "inherit", "ipc"],
  });
}

type Ready = Record<string, unknown> & { type: "ready" };

async function waitReady(child: ChildProcess, name: string, timeoutMs = 60_000): Promise<Ready> {
  return new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not become ready within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: unknown): void => {
      if (typeof message === "object" && message !== null && (message as { type?: unknown }).type === "ready") {
        cleanup();
        resolve(message as Ready);
      }
    };
    const onExit = (code: number | null, signal: string | null): void =>
      fail(new Error(`${name} exited before it was ready (${signal ?? `exit code ${code}`}); see its log above`));
    const fail = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

async function stopChild(child: ChildProcess, graceMs = 8000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * The infra environment a service process gets: one MYSQL_URL_<RS> per replica
 * set carrying the application user (never the admin), REDIS_URL and NATS_URL;
 * the same variables a deployment sets by hand.
 */
export function serviceInfraEnv(infra: InfraInfo): Record<string, string> {
  const { user, password } = infra.mysql.appUser;
  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  const env: Record<string, string> = { REDIS_URL: infra.redisUrl, NATS_URL: infra.natsUrl, ...shardConfigEnv(infra) };
  for (const rs of infra.mysql.replicaSets) {
    const hosts = [rs.primary, ...rs.replicas].map((m) => `${m.host}:${m.port}`).join(",");
    env[replicaSetEnvVar(rs.name)] = `mysql://${auth}@${hosts}`;
  }
  return env;
}

/**
 * The topology manager's infra environment: MYSQL_URL_<RS> with the ADMIN
 * account (it promotes and fences; never give this to a service) and NATS_URL.
 * Members are listed in the shard config's order when given, so the manager
 * names them as the config does whichever is primary now.
 */
export function topologyInfraEnv(infra: InfraInfo, order?: ShardConfig): Record<string, string> {
  const { user, password } = infra.mysql.adminUser;
  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  const env: Record<string, string> = { NATS_URL: infra.natsUrl, ...shardConfigEnv(infra) };
  for (const rs of infra.mysql.replicaSets) {
    const members = [rs.primary, ...rs.replicas];
    const config = order?.replicaSets.find((r) => r.name === rs.name);
    if (config) {
      const names = [...config.members.filter((m) => m.role === "primary"), ...config.members.filter((m) => m.role === "replica")].map((m) => m.name);
      members.sort((a, b) => names.indexOf(a.name) - names.indexOf(b.name));
    }
    env[replicaSetEnvVar(rs.name)] = `mysql://${auth}@${members.map((m) => `${m.host}:${m.port}`).join(",")}`;
  }
  return env;
}

function shardConfigEnv(infra: InfraInfo): Record<string, string> {
  return infra.shardConfigFile === undefined ? {} : { CHIRP_SHARD_CONFIG: infra.shardConfigFile };
}
