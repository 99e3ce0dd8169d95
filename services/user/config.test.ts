import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/config.js";
import { generateTokenKeys } from "../../lib/auth/token.js";
import { USER_DEFAULTS, loadUserConfig, signUpCommitWindowMs } from "./config.js";

const key = generateTokenKeys().privateKey;

function problems(env: Record<string, string>): string[] {
  try {
    loadUserConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}

describe("user service config", () => {
  it("has OWASP-minimum argon2id and 7-day tokens by default", () => {
    const config = loadUserConfig({ CHIRP_TOKEN_PRIVATE_KEY: key });
    expect(config.passwordHash).toEqual({ memoryKib: 19456, timeCost: 2, parallelism: 1 });
    expect(config.tokenTtlSeconds).toBe(604_800);
    expect(config.claimGraceMs).toBe(USER_DEFAULTS.claimGraceMs);
    expect(config.tokenPrivateKey).toBe(key);
  });

  it("caches handles for an hour by default; 0 turns the handle cache off", () => {
    expect(loadUserConfig({ CHIRP_TOKEN_PRIVATE_KEY: key }).handleCacheTtlMs).toBe(3_600_000);
    expect(loadUserConfig({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_HANDLE_CACHE_TTL_MS: "0" }).handleCacheTtlMs).toBe(0);
    expect(problems({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_HANDLE_CACHE_TTL_MS: "-1" })).toHaveLength(1);
  });

  it("takes the key with escaped newlines", () => {
    expect(loadUserConfig({ CHIRP_TOKEN_PRIVATE_KEY: key.replace(/\n/g, "\\n") }).tokenPrivateKey).toBe(key);
  });

  it("lists every problem at once", () => {
    const found = problems({ CHIRP_TOKEN_TTL_SECONDS: "0", CHIRP_USER_ARGON2_TIME_COST: "x" });
    expect(found).toHaveLength(3);
    expect(found.join("\n")).toContain("CHIRP_TOKEN_PRIVATE_KEY is required");
    expect(problems({ CHIRP_TOKEN_PRIVATE_KEY: "not a key" })).toHaveLength(1);
  });

  it("refuses argon2id costs below OWASP's floor for the time cost, accepts its other rows", () => {
    expect(problems({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_ARGON2_MEMORY_KIB: "8192" })).toHaveLength(1);
    expect(problems({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_ARGON2_MEMORY_KIB: "19456", CHIRP_USER_ARGON2_TIME_COST: "1" })).toHaveLength(1);
    expect(problems({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_ARGON2_MEMORY_KIB: "47104", CHIRP_USER_ARGON2_TIME_COST: "1" })).toEqual([]);
    expect(problems({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_ARGON2_MEMORY_KIB: "9216", CHIRP_USER_ARGON2_TIME_COST: "4" })).toEqual([]);
    expect(problems({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_ARGON2_MEMORY_KIB: "7168", CHIRP_USER_ARGON2_TIME_COST: "8" })).toEqual([]);
  });

  it("gives a sign-up a third of the claim grace, less one statement timeout, to send its COMMIT", () => {
    expect(loadUserConfig({ CHIRP_TOKEN_PRIVATE_KEY: key }).signUpCommitWindowMs).toBe(5000);
    expect(signUpCommitWindowMs(60_000, 2000)).toBe(18_000);
    const config = loadUserConfig({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_CLAIM_GRACE_MS: "60000", CHIRP_DB_QUERY_TIMEOUT_MS: "2000" });
    expect(config.signUpCommitWindowMs).toBe(18_000);
  });

  it("refuses a claim grace that leaves a sign-up less than a second before its COMMIT", () => {
    expect(problems({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_CLAIM_GRACE_MS: "18000" })).toEqual([]);
    const found = problems({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_CLAIM_GRACE_MS: "17999" });
    expect(found).toHaveLength(1);
    expect(found[0]).toContain("CHIRP_USER_CLAIM_GRACE_MS must be at least 18000 with CHIRP_DB_QUERY_TIMEOUT_MS=5000");
    expect(problems({ CHIRP_TOKEN_PRIVATE_KEY: key, CHIRP_USER_CLAIM_GRACE_MS: "6000", CHIRP_DB_QUERY_TIMEOUT_MS: "1000" })).toEqual([]);
  });
});
