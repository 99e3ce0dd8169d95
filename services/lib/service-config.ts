import { EnvReader, LOG_LEVELS, type Env, type LogLevel } from "./config.js";
import { DEFAULT_PORTS, SERVICE_NAMES, envName, type ServiceName } from "./mesh.js";

/** What every mesh service process reads from its environment. */
export interface ServiceConfig {
  readonly name: ServiceName;
  readonly host: string;
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly logLevel: LogLevel;
  /** How long in-flight calls may finish after SIGTERM before they are cut. */
  readonly shutdownGraceMs: number;
  /** Where the other services are reached (CHIRP_<SERVICE>_ADDR). */
  readonly addresses: Readonly<Record<ServiceName, string>>;
}

export function loadServiceConfig(name: ServiceName, env: Env): ServiceConfig {
  const read = new EnvReader(env);
  const config: ServiceConfig = {
    name,
    host: read.string("CHIRP_BIND_HOST", "127.0.0.1"),
    grpcPort: read.port(envName.grpcPort(name), DEFAULT_PORTS[name].grpc),
    metricsPort: read.port(envName.metricsPort(name), DEFAULT_PORTS[name].metrics),
    logLevel: read.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
    shutdownGraceMs: read.int("CHIRP_SHUTDOWN_GRACE_MS", 5000, 0, 60_000),
    addresses: meshAddresses(read),
  };
  read.done();
  return config;
}

/** CHIRP_<SERVICE>_ADDR for every service, defaulting to the documented local ports. */
export function meshAddresses(read: EnvReader): Record<ServiceName, string> {
  return Object.fromEntries(
    SERVICE_NAMES.map((s) => [s, read.string(envName.address(s), `127.0.0.1:${DEFAULT_PORTS[s].grpc}`)]),
  ) as Record<ServiceName, string>;
}
