import { describe, expect, it } from "vitest";
import { generateTokenKeys } from "../lib/auth/token.js";
import { ConfigError } from "../lib/config.js";
import { DEFAULT_ACCOUNT_LIMITS } from "./account-limit.js";
import { loadGatewayConfig } from "./config.js";
import { DEFAULT_RATE_LIMITS } from "./rate-limit.js";
import { generateMeshSecret } from "../lib/auth/assertion.js";

describe("loadGatewayConfig", () => {
  const keys = { CHIRP_TOKEN_PUBLIC_KEYS: generateTokenKeys().publicKey, CHIRP_MESH_SECRET: generateMeshSecret() };

  it("limits by DEFAULT_RATE_LIMITS when nothing is set (the defaults travel as text)", () => {
    expect(loadGatewayConfig(keys).rateLimits).toEqual(DEFAULT_RATE_LIMITS);
  });

  it("takes a bucket or off per class", () => {
    const { rateLimits } = loadGatewayConfig({ ...keys, CHIRP_GATEWAY_RATE_READ_USER: "5/s:7", CHIRP_GATEWAY_RATE_WRITE_IP: "off" });
    expect(rateLimits.read.user).toEqual({ perSecond: 5, burst: 7 });
    expect(rateLimits.write.ip).toBeUndefined();
  });

  it("serves no public /metrics, trusts no proxy and limits wrong passwords per account by default", () => {
    const config = loadGatewayConfig(keys);
    expect(config.publicMetrics).toBe(false);
    expect(config.metricsPort).toBe(9108);
    expect(config.trustedProxies.any).toBe(false);
    expect(config.accountLimits).toEqual(DEFAULT_ACCOUNT_LIMITS);
  });

  it("reads trusted proxies, public metrics and the account limits, and lists every bad one", () => {
    const config = loadGatewayConfig({
      ...keys,
      CHIRP_GATEWAY_TRUSTED_PROXIES: "10.0.0.0/8, ::1",
      CHIRP_GATEWAY_PUBLIC_METRICS: "true",
      CHIRP_GATEWAY_RATE_AUTH_ACCOUNT: "off",
      CHIRP_GATEWAY_RATE_AUTH_KNOWN_DAYS: "0",
    });
    expect(config.trustedProxies.has("10.1.2.3")).toBe(true);
    expect(config.trustedProxies.has("192.0.2.1")).toBe(false);
    expect(config.publicMetrics).toBe(true);
    expect(config.accountLimits).toEqual({ failures: undefined, knownDays: 0 });
    let problems: readonly string[] = [];
    try {
      loadGatewayConfig({ ...keys, CHIRP_GATEWAY_TRUSTED_PROXIES: "10.0.0.0/40", CHIRP_GATEWAY_PUBLIC_METRICS: "yes", CHIRP_GATEWAY_RATE_AUTH_ACCOUNT: "often" });
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(problems.map((p) => p.split(/[: ]/)[0])).toEqual(expect.arrayContaining(["CHIRP_GATEWAY_TRUSTED_PROXIES", "CHIRP_GATEWAY_PUBLIC_METRICS", "CHIRP_GATEWAY_RATE_AUTH_ACCOUNT"]));
  });
});
