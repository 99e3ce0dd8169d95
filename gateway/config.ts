import { EnvReader, LOG_LEVELS, type Env, type LogLevel } from "../services/lib/config.js";
import { DEFAULT_GATEWAY_PORT, type ServiceName } from "../services/lib/mesh.js";
import { meshAddresses } from "../services/lib/service-config.js";

export interface GatewayConfig {
  readonly host: string;
  readonly port: number;
  /** Where each mesh service is reached: "host:port[,host:port...]" (round-robin). */
  readonly backends: Readonly<Record<ServiceName, string>>;
  /** Origins allowed to call from a browser; ["*"] allows any (tokens travel in a header, not cookies). */
  readonly corsOrigins: readonly string[];
  /** Deadline for a forwarded call when the client sets none. */
  readonly defaultTimeoutMs: number;
  readonly logLevel: LogLevel;
}

export function loadGatewayConfig(env: Env): GatewayConfig {
  const read = new EnvReader(env);
  const backends = meshAddresses(read);
  const config: GatewayConfig = {
    host: read.string("CHIRP_GATEWAY_HOST", "127.0.0.1"),
    port: read.port("CHIRP_GATEWAY_PORT", DEFAULT_GATEWAY_PORT),
    backends,
    corsOrigins: read
      .string("CHIRP_GATEWAY_CORS_ORIGINS", "*")
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== ""),
    defaultTimeoutMs: read.int("CHIRP_GATEWAY_TIMEOUT_MS", 10_000, 1, 600_000),
    logLevel: read.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
  };
  read.done();
  return config;
}
