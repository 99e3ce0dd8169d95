import { parseMeshSecrets, type MeshSecret } from "../lib/auth/assertion.js";
import { parsePublicKeys } from "../lib/auth/keys.js";
import { ConfigError, EnvReader, LOG_LEVELS, type Env, type LogLevel } from "../lib/config.js";
import { DEFAULT_GATEWAY_METRICS_PORT, DEFAULT_GATEWAY_PORT, type ServiceName } from "../lib/mesh.js";
import { loadRedisConfig, type RedisConfig } from "../lib/redis.js";
import { meshAddresses } from "../lib/service-config.js";
import { DEFAULT_ACCOUNT_LIMITS, type AccountLimits } from "./account-limit.js";
import { parseTrustedProxies, type TrustedProxies } from "./client-address.js";
import { DEFAULT_RATE_LIMITS, RATE_CLASSES, formatBucket, parseBucket, type Bucket, type RateClass, type RateLimits } from "./rate-limit.js";

export interface GatewayConfig {
  /** CHIRP_GATEWAY_HOST: the address the gateway listens on. */
  readonly host: string;
  /** CHIRP_GATEWAY_PORT: the gateway's one public port: Connect, gRPC-Web and gRPC, the web app, `/media` and `/healthz` (and `/metrics` with CHIRP_GATEWAY_PUBLIC_METRICS). */
  readonly port: number;
  /**
   * CHIRP_GATEWAY_PUBLIC_METRICS: `true` also serves `/metrics` on the public
   * port. Off by default: the metrics tell anyone who asks how busy the system
   * is, which methods fail and how the rate limits decide. Prometheus scrapes
   * the metrics port instead: CHIRP_GATEWAY_METRICS_PORT for a gateway process
   * alone, CHIRP_METRICS_PORT for one that also hosts services.
   */
  readonly publicMetrics: boolean;
  /** CHIRP_GATEWAY_METRICS_PORT: a gateway process alone (`gateway/main.ts`, the mesh): its `/metrics` and `/healthz` port, on CHIRP_BIND_HOST. */
  readonly metricsPort: number;
  /** Where a gateway process alone serves its metrics port (CHIRP_BIND_HOST). */
  readonly metricsHost: string;
  /**
   * CHIRP_GATEWAY_TRUSTED_PROXIES: comma-separated addresses and CIDR ranges
   * (`10.0.0.0/8,fd00::/8`) of the proxies in front of the gateway. A
   * connection from one of them is on behalf of the right-most
   * `X-Forwarded-For` address that is not one of them (nginx's
   * `real_ip_recursive`); that address is rate limited and logged. None by
   * default: the client is the connection's own address and
   * `X-Forwarded-For` is ignored (gateway/client-address.ts).
   */
  readonly trustedProxies: TrustedProxies;
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
  /**
   * CHIRP_MESH_SECRET: the mesh secret (base64url, 32 bytes or more) the
   * gateway vouches for callers with: every call it forwards for a signed-in
   * user carries an assertion (lib/auth/assertion.ts, decision 22) that each
   * service checks with its own key derived from this secret. Only gateways
   * hold it, and a process that runs a gateway beside services (`--target
   * all`), which derives their keys from it. Several, comma-separated,
   * during a rotation: the first signs, every one is accepted. `npm start`
   * keeps one in the data dir (`mesh-secret`).
   */
  readonly meshSecrets: readonly MeshSecret[];
  /**
   * CHIRP_MESH_ASSERTION_TTL_MS: how long an assertion is valid, or the
   * forwarded call's deadline when that is longer (at most 10 minutes). A
   * service's calls on the caller's behalf must be made within it.
   */
  readonly assertionTtlMs: number;
  /** Where the rate limits are kept (REDIS_URL, CHIRP_REDIS_COMMAND_TIMEOUT_MS); no URL, no limits. */
  readonly redis: RedisConfig;
  /**
   * CHIRP_GATEWAY_RATE_<CLASS>_<USER|IP>: the token bucket in Redis of each
   * user (`_USER`) and of each client address (`_IP`) for one class of
   * request (`READ`, `WRITE`, `AUTH`: sign-up, log-in and password changes, `UPLOAD`):
   * `<n>/<s|m|h>[:<burst>]`, e.g. `20/s:200`, or `off` (gateway/rate-limit.ts).
   */
  readonly rateLimits: RateLimits;
  /** Wrong passwords per account (gateway/account-limit.ts). */
  readonly accountLimits: AccountLimits;
  /** CHIRP_GATEWAY_RATE_EXEMPT_IPS: client addresses never rate limited, comma-separated. `npm start` exempts loopback (`127.0.0.1,::1`) so `chirp seed` can run; set it to `""` there to see the limits. */
  readonly rateLimitExemptIps: readonly string[];
  /** How long calls in flight may finish after SIGTERM (CHIRP_SHUTDOWN_GRACE_MS). */
  readonly shutdownGraceMs: number;
}

export function loadGatewayConfig(env: Env): GatewayConfig {
  const read = new EnvReader(env);
  const backends = meshAddresses(read);
  const rawKeys = read.string("CHIRP_TOKEN_PUBLIC_KEYS");
  const rawSecret = read.string("CHIRP_MESH_SECRET");
  const assertionTtlMs = read.int("CHIRP_MESH_ASSERTION_TTL_MS", 60_000, 1000, 600_000);
  const problems: string[] = [];
  let trustedProxies = parseTrustedProxies("");
  try {
    trustedProxies = parseTrustedProxies(read.optional("CHIRP_GATEWAY_TRUSTED_PROXIES") ?? "");
  } catch (err) {
    problems.push(`CHIRP_GATEWAY_TRUSTED_PROXIES: ${(err as Error).message}`);
  }
  const config: Omit<GatewayConfig, "tokenPublicKeys" | "meshSecrets" | "assertionTtlMs" | "redis" | "rateLimits" | "accountLimits"> = {
    host: read.string("CHIRP_GATEWAY_HOST", "127.0.0.1"),
    port: read.port("CHIRP_GATEWAY_PORT", DEFAULT_GATEWAY_PORT),
    publicMetrics: read.oneOf("CHIRP_GATEWAY_PUBLIC_METRICS", ["true", "false"], "false") === "true",
    metricsPort: read.port("CHIRP_GATEWAY_METRICS_PORT", DEFAULT_GATEWAY_METRICS_PORT),
    metricsHost: read.string("CHIRP_BIND_HOST", "127.0.0.1"),
    trustedProxies,
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
      // Sign-up and log-in carry no token: only the address is limited (and, per account, gateway/account-limit.ts).
      return [cls, { user: cls === "auth" ? undefined : bucket("user"), ip: bucket("ip") }];
    }),
  ) as Record<RateClass, RateLimits[RateClass]>;
  const accountLimits = loadAccountLimits(read, problems);
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
  let meshSecrets: MeshSecret[] = [];
  if (rawSecret !== "") {
    try {
      meshSecrets = parseMeshSecrets(rawSecret);
    } catch (err) {
      problems.push(`CHIRP_MESH_SECRET: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...config, tokenPublicKeys, meshSecrets, assertionTtlMs, redis, rateLimits, accountLimits };
}

function loadAccountLimits(read: EnvReader, problems: string[]): AccountLimits {
  /**
   * CHIRP_GATEWAY_RATE_AUTH_ACCOUNT: the token bucket of wrong passwords of
   * each account, whatever address they come from (LogIn by the handle it
   * names, ChangePassword by its caller), in the syntax of the other buckets,
   * or `off`. A right password costs nothing. gateway/account-limit.ts.
   */
  const name = "CHIRP_GATEWAY_RATE_AUTH_ACCOUNT";
  let failures: AccountLimits["failures"];
  try {
    failures = parseBucket(read.string(name, formatBucket(DEFAULT_ACCOUNT_LIMITS.failures)));
  } catch (err) {
    problems.push(`${name}: ${(err as Error).message}`);
  }
  /**
   * CHIRP_GATEWAY_RATE_AUTH_KNOWN_DAYS: how long an address that logged in to
   * an account keeps a wrong-password bucket of its own there, so that an
   * attack on the account from elsewhere does not lock its owner out; 0: every
   * address shares the account's bucket.
   */
  const knownDays = read.int("CHIRP_GATEWAY_RATE_AUTH_KNOWN_DAYS", DEFAULT_ACCOUNT_LIMITS.knownDays, 0, 365);
  return { failures, knownDays };
}
