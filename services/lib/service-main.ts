import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Env } from "./config.js";
import { createLogger, type Logger } from "./logger.js";
import type { ServiceName } from "./mesh.js";
import { createMetrics, serveMetrics, type Metrics } from "./metrics.js";
import { GrpcServer } from "./rpc/grpc-server.js";
import { loadServiceConfig, type ServiceConfig } from "./service-config.js";
import { onShutdownSignal } from "./shutdown.js";
import { loadTracingConfig } from "./tracing/config.js";
import { startTracing } from "./tracing/tracing.js";

/** What a service's routes get: built once per process, closed on shutdown. */
export interface BaseContext {
  /** The environment the process was started with; read only through config loaders. */
  readonly env: Env;
  readonly config: ServiceConfig;
  readonly log: Logger;
  readonly metrics: Metrics;
}

export interface ServiceSpec<S extends DescService, C extends BaseContext> {
  readonly name: ServiceName;
  readonly service: S;
  /** Builds the service's context (pools, clients) from the base one. */
  readonly createContext: (base: BaseContext) => Promise<C & { close(): Promise<void> }>;
  /** The handlers; methods left out answer Unimplemented. */
  readonly routes: (ctx: C) => Partial<ServiceImpl<S>>;
}

/** Message sent over the IPC channel when a parent process (npm start, tests) spawned us. */
export interface ReadyMessage {
  readonly type: "ready";
  readonly service: string;
  readonly grpcPort: number;
  readonly metricsPort: number;
}

/**
 * Process entry shared by every service: config, logger, tracing (when
 * configured), metrics, the gRPC server with health and reflection, /metrics,
 * and a graceful drain on SIGTERM/SIGINT that closes resources in reverse
 * order of opening.
 */
export async function runService<S extends DescService, C extends BaseContext>(
  spec: ServiceSpec<S, C>,
  env: Env = process.env,
): Promise<void> {
  const config = loadServiceConfig(spec.name, env);
  const log = createLogger(spec.name, config.logLevel);
  // Before anything that may call or publish; shut down last, so spans of the drain are exported too.
  const tracing = startTracing(loadTracingConfig(env, spec.name), log);
  const metrics = createMetrics(spec.name);
  const ctx = await spec.createContext({ env, config, log, metrics });

  const server = new GrpcServer({ log, metrics }).register(spec.service, spec.routes(ctx));
  const grpcPort = await server.listen(config.host, config.grpcPort);
  const metricsServer = await serveMetrics(metrics.registry, config.metricsPort, config.host);

  log.info({ grpc: `${config.host}:${grpcPort}`, metrics: `http://${config.host}:${metricsServer.port}/metrics` }, "serving");
  const ready: ReadyMessage = { type: "ready", service: spec.name, grpcPort, metricsPort: metricsServer.port };
  process.send?.(ready);

  onShutdownSignal(log, async () => {
    await server.close(config.shutdownGraceMs);
    await metricsServer.close();
    await ctx.close();
    await tracing.shutdown();
  });
}
