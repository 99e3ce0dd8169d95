// The one process entry of every deployment mode: one service (the mesh:
// services/<name>/main.ts), every service and the gateway (`--target all`:
// services/main.ts), or any set in between. The shared parts (shard router,
// Redis, NATS, topology follower, node id lease, metrics registry, tracer)
// are built once per process; calls between services hosted together go
// through the in-process transport (rpc/in-process.ts), the others over gRPC.
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Gateway } from "../gateway/server.js";
import { createAssertionVerifier, parseMeshSecrets, parseServiceKeys, serviceKey, type AssertionVerifier, type ServiceKey } from "./auth/assertion.js";
import { EnvReader, LOG_LEVELS, type Env, type LogLevel } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import { DEFAULT_PORTS, MULTI_SERVICE_PORTS, type ServiceName } from "./mesh.js";
import { componentMetrics, createMetrics, serveMetrics, type Metrics } from "./metrics.js";
import { shareWorkerMetrics } from "./worker-metrics.js";
import { GrpcServer } from "./rpc/grpc-server.js";
import { createCallerCheck } from "./rpc/callers.js";
import { InProcessServices } from "./rpc/in-process.js";
import { meshAddresses } from "./service-config.js";
import { createServiceContext, type ServiceContext } from "./service-context.js";
import { onShutdownSignal } from "./shutdown.js";
import { loadTracingConfig } from "./tracing/config.js";
import { startTracing } from "./tracing/tracing.js";

/** What the shared context is built from: made once per process. */
export interface BaseContext {
  /** The environment the process was started with; read only through config loaders. */
  readonly env: Env;
  /** The process's name ("tweet", or "all"): its connections are named chirp-<name>. */
  readonly name: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Where services not hosted here are reached (CHIRP_<SERVICE>_ADDR). */
  readonly addresses: Readonly<Record<ServiceName, string>>;
  /** The services hosted in this process, called in-process; undefined: every call goes over gRPC. */
  readonly local?: InProcessServices;
}

export interface ServiceSpec<S extends DescService, C extends ServiceContext> {
  readonly name: ServiceName;
  readonly service: S;
  /**
   * Adds the service's own parts (stores, caches, consumers) to the
   * process's shared context; its close() closes those parts only.
   */
  readonly createContext: (shared: ServiceContext) => Promise<C & { close(): Promise<void> }>;
  /** The handlers; methods left out answer Unimplemented. */
  readonly routes: (ctx: C) => Partial<ServiceImpl<S>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyServiceSpec = ServiceSpec<DescService, any>;

/** What the process hosts. */
export interface ProcessTargets {
  readonly services: readonly AnyServiceSpec[];
  /** Also the public gateway, calling the hosted services in-process. */
  readonly gateway: boolean;
}

/** Message sent over the IPC channel when a parent process (npm start, tests) spawned us. */
export interface ReadyMessage {
  readonly type: "ready";
  /** The process's name: a service's, or "all". */
  readonly service: string;
  readonly grpcPort: number;
  readonly metricsPort: number;
  /** The gateway's port, when the process runs it. */
  readonly port?: number;
}

/** What a process reads for itself; each part (services, gateway) reads its own on top. */
export interface ProcessConfig {
  readonly name: string;
  /** CHIRP_BIND_HOST: the address a service process's gRPC and metrics servers listen on (and the metrics servers of the topology manager and of a gateway process alone). */
  readonly host: string;
  /**
   * One gRPC port for every service hosted here.
   *
   * CHIRP_<SERVICE>_GRPC_PORT: the gRPC port of a process of that one
   * service (the mesh), with health and reflection.
   *
   * CHIRP_GRPC_PORT: the one gRPC port of a process of several services
   * (every service it hosts, health and reflection).
   */
  readonly grpcPort: number;
  /**
   * CHIRP_<SERVICE>_METRICS_PORT: the `/metrics` and `/healthz` port of a
   * process of that one service.
   *
   * CHIRP_METRICS_PORT: the `/metrics` and `/healthz` port of a process of
   * several services.
   */
  readonly metricsPort: number;
  /** LOG_LEVEL: the pino log level; successful calls are logged at `debug`. */
  readonly logLevel: LogLevel;
  /** CHIRP_SHUTDOWN_GRACE_MS: how long in-flight calls may finish after SIGTERM before they are cut (services and gateway; the gateway ends open event streams at once). */
  readonly shutdownGraceMs: number;
  readonly addresses: Readonly<Record<ServiceName, string>>;
  /**
   * The keys this process checks callers' assertions with, one per hosted
   * service (decision 22).
   *
   * CHIRP_MESH_KEYS: a service process's own keys, `<kid>:<service>:<key>`,
   * comma-separated (several generations during a rotation); derived from
   * the mesh secret, so they let a service check assertions but not make one.
   * `npm start` and launchSystem hand each process its own.
   *
   * CHIRP_MESH_SECRET, when the process has it (a process with the gateway,
   * such as `--target all`), gives the keys of every service it hosts.
   */
  readonly meshKeys: readonly ServiceKey[];
}

/**
 * One service alone reads its own CHIRP_<SERVICE>_GRPC_PORT and
 * _METRICS_PORT (the mesh's table, mesh.ts); several together read
 * CHIRP_GRPC_PORT and CHIRP_METRICS_PORT.
 */
export function loadProcessConfig(names: readonly ServiceName[], env: Env): ProcessConfig {
  const read = new EnvReader(env);
  const one = names.length === 1 ? names[0]! : undefined;
  const name = one ?? (names.length === 0 ? "gateway" : "all");
  const config: ProcessConfig = {
    name,
    host: read.string("CHIRP_BIND_HOST", "127.0.0.1"),
    grpcPort:
      one === undefined ? read.port("CHIRP_GRPC_PORT", MULTI_SERVICE_PORTS.grpc) : read.port(`CHIRP_${one.toUpperCase()}_GRPC_PORT`, DEFAULT_PORTS[one].grpc),
    metricsPort:
      one === undefined
        ? read.port("CHIRP_METRICS_PORT", MULTI_SERVICE_PORTS.metrics)
        : read.port(`CHIRP_${one.toUpperCase()}_METRICS_PORT`, DEFAULT_PORTS[one].metrics),
    logLevel: read.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
    shutdownGraceMs: read.int("CHIRP_SHUTDOWN_GRACE_MS", 5000, 0, 60_000),
    addresses: meshAddresses(read),
    meshKeys: [],
  };
  const problems: string[] = [];
  const keys: ServiceKey[] = [];
  const rawSecret = read.optional("CHIRP_MESH_SECRET");
  const rawKeys = read.optional("CHIRP_MESH_KEYS");
  try {
    if (rawSecret !== undefined && rawSecret !== "") for (const secret of parseMeshSecrets(rawSecret)) keys.push(...names.map((n) => serviceKey(secret, n)));
  } catch (err) {
    problems.push(`CHIRP_MESH_SECRET: ${(err as Error).message}`);
  }
  try {
    if (rawKeys !== undefined && rawKeys !== "") keys.push(...parseServiceKeys(rawKeys).filter((k) => names.includes(k.service)));
  } catch (err) {
    problems.push(`CHIRP_MESH_KEYS: ${(err as Error).message}`);
  }
  if (problems.length === 0) {
    const missing = names.filter((n) => !keys.some((k) => k.service === n));
    if (missing.length > 0) problems.push(`CHIRP_MESH_KEYS has no key for ${missing.join(", ")} (nor does CHIRP_MESH_SECRET give one): its callers could not be checked`);
  }
  read.done(problems);
  return { ...config, meshKeys: keys };
}

export interface RunningProcess {
  readonly config: ProcessConfig;
  readonly log: Logger;
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly gateway: Gateway | undefined;
  /** Drains the gateway, then the gRPC server, then closes every context in reverse order of opening. */
  close(): Promise<void>;
}

/**
 * Builds and serves what `targets` names: config, loggers, tracing, one
 * metrics registry, the shared context, each service's context and routes,
 * one gRPC server (health and reflection list every hosted service),
 * /metrics, and the gateway when asked for.
 */
export async function startProcess(targets: ProcessTargets, env: Env = process.env): Promise<RunningProcess> {
  const names = targets.services.map((s) => s.name);
  const config = loadProcessConfig(names, env);
  // Loaded only where it runs (a service of the mesh never needs its code);
  // its config first too: a bad CHIRP_GATEWAY_* fails the start before any pool opens.
  const gatewayModule = targets.gateway ? await import("../gateway/server.js") : undefined;
  const gatewayConfig = targets.gateway ? (await import("../gateway/config.js")).loadGatewayConfig(env) : undefined;
  const log = createLogger(config.name, config.logLevel);
  // Before anything that may call or publish; shut down last, so spans of the drain are exported too.
  const tracing = startTracing(loadTracingConfig(env, config.name), log);
  const metrics = createMetrics(config.name);
  // One of several workers (--processes): /metrics answers for all of them.
  shareWorkerMetrics(metrics.registry);
  // One verifier for the process: its gRPC port and its in-process calls admit callers alike.
  const assertions: AssertionVerifier | undefined = config.meshKeys.length > 0 ? createAssertionVerifier(config.meshKeys) : undefined;
  const callers = createCallerCheck(assertions);
  const local = targets.services.length > 1 || targets.gateway ? new InProcessServices(targets.services.map((s) => s.service), callers) : undefined;
  const closers: Array<() => Promise<void>> = [() => tracing.shutdown()];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    const shared = await createServiceContext({ env, name: config.name, log, metrics, addresses: config.addresses, ...(local ? { local } : {}) });
    closers.push(() => shared.close());
    const server = new GrpcServer({ log, metrics, callers });
    for (const spec of targets.services) {
      // Several services in one process: each logs under its own name and labels its RPCs with it.
      const own = targets.services.length === 1 ? shared : { ...shared, log: createLogger(spec.name, config.logLevel), metrics: componentMetrics(metrics, spec.name) };
      const ctx = await spec.createContext(own);
      closers.push(() => ctx.close());
      const impl = spec.routes(ctx);
      server.register(spec.service, impl, own.metrics);
      local?.register(spec.service, impl, spec.name, metrics, own.log);
    }
    local?.open();
    // A process of the gateway alone serves no gRPC, and its /metrics on the
    // gateway's metrics port (CHIRP_GATEWAY_METRICS_PORT; the public port
    // serves none unless CHIRP_GATEWAY_PUBLIC_METRICS says so).
    let grpcPort = 0;
    let metricsPort = 0;
    if (targets.services.length > 0) {
      grpcPort = await server.listen(config.host, config.grpcPort);
      closers.push(() => server.close(config.shutdownGraceMs));
    }
    if (targets.services.length > 0 || gatewayConfig !== undefined) {
      const [port, host] = targets.services.length > 0 ? [config.metricsPort, config.host] : [gatewayConfig!.metricsPort, gatewayConfig!.metricsHost];
      const metricsServer = await serveMetrics(metrics.registry, port, host);
      metricsPort = metricsServer.port;
      closers.push(() => metricsServer.close());
    }
    let gateway: Gateway | undefined;
    if (gatewayConfig !== undefined) {
      const g = await gatewayModule!.startGateway(gatewayConfig, createLogger("gateway", gatewayConfig.logLevel), componentMetrics(metrics, "gateway"), {
        ...(local ? { local } : {}),
        ...(shared.bus === undefined ? {} : { bus: shared.bus }),
        ...(assertions === undefined ? {} : { assertionVerifier: assertions }),
        // Uploads and downloads stream over gRPC (gateway/media.ts): to this process's own port.
        ...(names.includes("media") ? { mediaTarget: `127.0.0.1:${grpcPort}` } : {}),
      });
      gateway = g;
      closers.push(() => g.close());
    }
    log.info(
      {
        services: names,
        ...(grpcPort === 0 ? {} : { grpc: `${config.host}:${grpcPort}` }),
        ...(metricsPort === 0 ? {} : { metrics: `http://${targets.services.length > 0 ? config.host : gatewayConfig!.metricsHost}:${metricsPort}/metrics` }),
        ...(gateway ? { gateway: `http://${gatewayConfig!.host}:${gateway.port}` } : {}),
      },
      "serving",
    );
    return { config, log, grpcPort, metricsPort, gateway, close: closeAll };
  } catch (err) {
    await closeAll().catch(() => {});
    throw err;
  }
}

/**
 * Process entry: starts what `targets` names, reports ready to a parent
 * that spawned us over IPC, and drains on SIGTERM/SIGINT.
 */
export async function runProcess(targets: ProcessTargets, env: Env = process.env): Promise<void> {
  const running = await startProcess(targets, env);
  const ready: ReadyMessage = {
    type: "ready",
    service: running.config.name,
    grpcPort: running.grpcPort,
    metricsPort: running.metricsPort,
    ...(running.gateway ? { port: running.gateway.port } : {}),
  };
  process.send?.(ready);
  onShutdownSignal(running.log, () => running.close());
}
