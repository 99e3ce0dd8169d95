import { parsePublicKeys } from "../lib/auth/keys.js";
import { ConfigError, EnvReader, LOG_LEVELS, type Env, type LogLevel } from "../lib/config.js";
import { DEFAULT_GATEWAY_PORT, type ServiceName } from "../lib/mesh.js";
import { loadRedisConfig, type RedisConfig } from "../lib/redis.js";
import { meshAddresses } from "../lib/service-config.js";
import { DEFAULT_RATE_LIMITS, RATE_CLASSES, formatBucket, parseBucket, type Bucket, type RateClass, type RateLimits } from "./rate-limit.js";

export interface GatewayConfig {
  /** CHIRP_GATEWAY_HOST: the address the gateway listens on. */
  readonly host: string;
  /** CHIRP_GATEWAY_PORT: the gateway's one port: Connect, gRPC-Web and gRPC, the web app, `/media`, `/metrics` and `/healthz`. */
  readonly port: number;
  /** Where each mesh service is reached: "host:port[,host:port...]" (round-robin). */
  readonly backends: Readonly<Record<ServiceName, string>>;
  /**
   * CHIRP_GATEWAY_CORS_ORIGINS: comma-separated origins allowed to call from
   * a browser; `*` allows any (tokens travel in a header, not in cookies).
   */
  readonly corsOrigins: readonly string[];
  /** CHIRP_GATEWAY_TIMEOUT_MS: the deadline of a forwarded call when the client sets none. */
  readonly defaultTimeoutMs: number;
  /** CHIRP_GATEWAY_UPLOAD_TIMEOUT_MS: how long a `POST /media` may take, body included. */
  readonly uploadTimeoutMs: number;
  readonly logLevel: LogLevel;
  /**
   * CHIRP_TOKEN_PUBLIC_KEYS: the Ed25519 public keys (PEM, one or more
   * concatenated) that session tokens are verified with. Several during a key
   * rotation: the new one before the user service signs with it, the old one
   * until its tokens have expired. `npm start` derives it from the user
   * service's private key.
   */
  readonly tokenPublicKeys: readonly string[];
  /** Where the rate limits are kept (REDIS_URL, CHIRP_REDIS_COMMAND_TIMEOUT_MS); no URL, no limits. */
  readonly redis: RedisConfig;
  /**
   * CHIRP_GATEWAY_RATE_<CLASS>_<USER|IP>: the token bucket in Redis of each
   * user (`_USER`) and of each client address (`_IP`) for one class of
   * request (`READ`, `WRITE`, `AUTH`: sign-up and log-in, `UPLOAD`):
   * `<n>/<s|m|h>[:<burst>]`, e.g. `20/s:200`, or `off` (gateway/rate-limit.ts).
   */
  readonly rateLimits: RateLimits;
  /** CHIRP_GATEWAY_RATE_EXEMPT_IPS: client addresses never rate limited, comma-separated. `npm start` exempts loopback (`127.0.0.1,::1`) so `chirp seed` can run; set it to `""` there to see the limits. */
  readonly rateLimitExemptIps: readonly string[];
  /** How long calls in flight may finish after SIGTERM (CHIRP_SHUTDOWN_GRACE_MS). */
  readonly shutdownGraceMs: number;
}

export function loadGatewayConfig(env: Env): GatewayConfig {
  const read = new EnvReader(env);
  const backends = meshAddresses(read);
  const rawKeys = read.string("CHIRP_TOKEN_PUBLIC_KEYS");
  const config: Omit<GatewayConfig, "tokenPublicKeys" | "redis" | "rateLimits"> = {
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
    rateLimitExemptIps: (read.optional("CHIRP_GATEWAY_RATE_EXEMPT_IPS") ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== ""),
    shutdownGraceMs: read.int("CHIRP_SHUTDOWN_GRACE_MS", 5000, 0, 600_000),
  };
  const problems: string[] = [];
  let redis: RedisConfig = { url: undefined, commandTimeoutMs: 500 };
  try {
    redis = loadRedisConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const rateLimits = Object.fromEntries(
    RATE_CLASSES.map((cls) => {
      const bucket = (who: "user" | "ip"): Bucket | undefined => {
        const name = `CHIRP_GATEWAY_RATE_${cls.toUpperCase()}_${who.toUpperCase()}`;
        // The default as text, so the configuration reference shows it (formatBucket and parseBucket round-trip it).
        const raw = read.string(name, formatBucket(DEFAULT_RATE_LIMITS[cls][who]));
        try {
          return parseBucket(raw);
        } catch (err) {
          problems.push(`${name}: ${(err as Error).message}`);
          return undefined;
        }
      };
      // Sign-up and log-in carry no token: only the address is limited.
      return [cls, { user: cls === "auth" ? undefined : bucket("user"), ip: bucket("ip") }];
    }),
  ) as Record<RateClass, RateLimits[RateClass]>;
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
  return { ...config, tokenPublicKeys, redis, rateLimits };
}
