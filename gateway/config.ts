import { parsePublicKeys } from "../services/lib/auth/keys.js";
import { ConfigError, EnvReader, LOG_LEVELS, type Env, type LogLevel } from "../services/lib/config.js";
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
  /** CHIRP_GATEWAY_UPLOAD_TIMEOUT_MS: how long a POST /media may take, body included (10 min). */
  readonly uploadTimeoutMs: number;
  readonly logLevel: LogLevel;
  /**
   * CHIRP_TOKEN_PUBLIC_KEYS: the Ed25519 public keys (PEM, one or more
   * concatenated) that session tokens are verified with. Several during a key
   * rotation: the new one before the user service signs with it, the old one
   * until its tokens have expired.
   */
  readonly tokenPublicKeys: readonly string[];
}

export function loadGatewayConfig(env: Env): GatewayConfig {
  const read = new EnvReader(env);
  const backends = meshAddresses(read);
  const rawKeys = read.string("CHIRP_TOKEN_PUBLIC_KEYS");
  const config: Omit<GatewayConfig, "tokenPublicKeys"> = {
    host: read.string("CHIRP_GATEWAY_HOST", "127.0.0.1"),
    port: read.port("CHIRP_GATEWAY_PORT", DEFAULT_GATEWAY_PORT),
    backends,
    corsOrigins: read
      .string("CHIRP_GATEWAY_CORS_ORIGINS", "*")
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== ""),
    defaultTimeoutMs: read.int("CHIRP_GATEWAY_TIMEOUT_MS", 10_000, 1, 600_000),
    uploadTimeoutMs: read.int("CHIRP_GATEWAY_UPLOAD_TIMEOUT_MS", 600_000, 1000, 3_600_000),
    logLevel: read.oneOf("LOG_LEVEL", LOG_LEVELS, "info"),
  };
  const problems: string[] = [];
  try {
    read.done();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  let tokenPublicKeys: string[] = [];
  if (rawKeys !== "") {
    try {
      tokenPublicKeys = parsePublicKeys(rawKeys);
    } catch (err) {
      problems.push(`CHIRP_TOKEN_PUBLIC_KEYS: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...config, tokenPublicKeys };
}
