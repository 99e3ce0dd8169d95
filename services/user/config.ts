// What the user service reads from its environment beyond every service's
// settings (service-config.ts) and the database's (shard/config.ts).
import { EnvReader, type Env } from "../../lib/config.js";
import { parsePrivateKey } from "../../lib/auth/keys.js";
import { DB_DEFAULTS } from "../../lib/shard/config.js";

export interface PasswordHashParams {
  /** argon2id memory cost in KiB (m). */
  readonly memoryKib: number;
  /** Passes over memory (t). */
  readonly timeCost: number;
  /** Lanes (p). */
  readonly parallelism: number;
}

export interface UserConfig {
  /**
   * CHIRP_TOKEN_PRIVATE_KEY: the Ed25519 private key (PEM; `\n` escapes
   * accepted) that signs session tokens. Only the user service has it;
   * `npm start` keeps one in `.data/local/token-signing-key.pem`.
   */
  readonly tokenPrivateKey: string;
  /** CHIRP_TOKEN_TTL_SECONDS: how long a session token from SignUp or LogIn is valid. */
  readonly tokenTtlSeconds: number;
  /**
   * CHIRP_USER_ARGON2_MEMORY_KIB: the argon2id memory cost of password
   * hashes, in KiB; never below OWASP's minimum for the time cost.
   *
   * CHIRP_USER_ARGON2_TIME_COST: the argon2id passes over memory.
   *
   * CHIRP_USER_ARGON2_PARALLELISM: the argon2id lanes.
   */
  readonly passwordHash: PasswordHashParams;
  /**
   * CHIRP_USER_CLAIM_GRACE_MS: how old a handle or email claim without its
   * user row must be before a new sign-up may take it over. At least
   * 3 x (CHIRP_DB_QUERY_TIMEOUT_MS + 1 s): a sign-up commits within a third
   * of it (docs/decisions/0007-claims-first-sign-up.md).
   */
  readonly claimGraceMs: number;
  /**
   * How long after sending its first claim a sign-up may still send its user
   * row's COMMIT: a third of the grace, less one statement timeout
   * (CHIRP_DB_QUERY_TIMEOUT_MS) for the COMMIT itself. See signUpCommitWindowMs.
   */
  readonly signUpCommitWindowMs: number;
  /**
   * CHIRP_USER_HANDLE_CACHE_TTL_MS: how long a handle's owner stays cached
   * in Redis (services/user/handle-cache.ts); it bounds an entry an
   * invalidation lost to a crash left behind (the handle's next sign-up
   * clears it too). 0: no cache.
   */
  readonly handleCacheTtlMs: number;
}

export const USER_DEFAULTS = {
  tokenTtlSeconds: 7 * 24 * 3600,
  // OWASP's first argon2id choice (Password Storage Cheat Sheet): m=19 MiB, t=2, p=1.
  passwordHash: { memoryKib: 19 * 1024, timeCost: 2, parallelism: 1 },
  claimGraceMs: 30_000,
  handleCacheTtlMs: 3_600_000,
} as const;

/** The least time a sign-up must be given from its first claim to its COMMIT; a shorter window is a configuration error. */
export const MIN_SIGN_UP_WINDOW_MS = 1000;

/**
 * The sign-up's claim lease (docs/decisions/0007-claims-first-sign-up.md):
 * the user row must be committed within a third of the grace of the
 * first claim, so that a takeover (which needs the claim to be a whole grace
 * old) can only ever come long after. The COMMIT is sent at the latest one
 * statement timeout before that third is over, the time the COMMIT is
 * assumed to take at most.
 */
export function signUpCommitWindowMs(claimGraceMs: number, statementTimeoutMs: number): number {
  return Math.floor(claimGraceMs / 3) - statementTimeoutMs;
}

/**
 * The least memory (KiB) OWASP accepts for each time cost with p=1; the
 * configuration may go above, never below (t above 5 is held to t=5's floor).
 */
const OWASP_MIN_MEMORY_KIB: Readonly<Record<number, number>> = { 1: 47_104, 2: 19_456, 3: 12_288, 4: 9_216, 5: 7_168 };

export function minimumMemoryKib(timeCost: number): number {
  return OWASP_MIN_MEMORY_KIB[Math.min(timeCost, 5)] ?? Number.POSITIVE_INFINITY;
}

export function loadUserConfig(env: Env): UserConfig {
  const read = new EnvReader(env);
  const rawKey = read.string("CHIRP_TOKEN_PRIVATE_KEY");
  const passwordHash: PasswordHashParams = {
    memoryKib: read.int("CHIRP_USER_ARGON2_MEMORY_KIB", USER_DEFAULTS.passwordHash.memoryKib, 1024, 4 * 1024 * 1024),
    timeCost: read.int("CHIRP_USER_ARGON2_TIME_COST", USER_DEFAULTS.passwordHash.timeCost, 1, 20),
    parallelism: read.int("CHIRP_USER_ARGON2_PARALLELISM", USER_DEFAULTS.passwordHash.parallelism, 1, 16),
  };
  const config = {
    tokenTtlSeconds: read.int("CHIRP_TOKEN_TTL_SECONDS", USER_DEFAULTS.tokenTtlSeconds, 60, 365 * 24 * 3600),
    passwordHash,
    claimGraceMs: read.int("CHIRP_USER_CLAIM_GRACE_MS", USER_DEFAULTS.claimGraceMs, 1000, 24 * 3600 * 1000),
    handleCacheTtlMs: read.int("CHIRP_USER_HANDLE_CACHE_TTL_MS", USER_DEFAULTS.handleCacheTtlMs, 0, 24 * 3600 * 1000),
  };
  // The shard router's statement timeout (shard/config.ts reads it too): the
  // bound on the sign-up's COMMIT.
  const statementTimeoutMs = read.int("CHIRP_DB_QUERY_TIMEOUT_MS", DB_DEFAULTS.queryTimeoutMs, 1, 3_600_000);
  const commitWindowMs = signUpCommitWindowMs(config.claimGraceMs, statementTimeoutMs);
  const problems: string[] = [];
  let tokenPrivateKey = "";
  if (rawKey !== "") {
    try {
      tokenPrivateKey = parsePrivateKey(rawKey);
    } catch (err) {
      problems.push(`CHIRP_TOKEN_PRIVATE_KEY: ${(err as Error).message}`);
    }
  }
  const floor = minimumMemoryKib(passwordHash.timeCost);
  if (passwordHash.memoryKib < floor) {
    problems.push(
      `CHIRP_USER_ARGON2_MEMORY_KIB must be at least ${floor} with CHIRP_USER_ARGON2_TIME_COST=${passwordHash.timeCost} (OWASP minimum for argon2id)`,
    );
  }
  if (commitWindowMs < MIN_SIGN_UP_WINDOW_MS) {
    const least = 3 * (statementTimeoutMs + MIN_SIGN_UP_WINDOW_MS);
    problems.push(
      `CHIRP_USER_CLAIM_GRACE_MS must be at least ${least} with CHIRP_DB_QUERY_TIMEOUT_MS=${statementTimeoutMs}: a sign-up commits its user row within a third of the grace, one statement timeout before its end`,
    );
  }
  read.done(problems);
  return { tokenPrivateKey, ...config, signUpCommitWindowMs: commitWindowMs };
}
