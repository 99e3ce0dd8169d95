import { describe, expect, it } from "vitest";
import { generateTokenKeys } from "../lib/auth/token.js";
import { loadGatewayConfig } from "./config.js";
import { DEFAULT_RATE_LIMITS } from "./rate-limit.js";

describe("loadGatewayConfig", () => {
  const keys = { CHIRP_TOKEN_PUBLIC_KEYS: generateTokenKeys().publicKey };

  it("limits by DEFAULT_RATE_LIMITS when nothing is set (the defaults travel as text)", () => {
    expect(loadGatewayConfig(keys).rateLimits).toEqual(DEFAULT_RATE_LIMITS);
  });

  it("takes a bucket or off per class", () => {
    const { rateLimits } = loadGatewayConfig({ ...keys, CHIRP_GATEWAY_RATE_READ_USER: "5/s:7", CHIRP_GATEWAY_RATE_WRITE_IP: "off" });
    expect(rateLimits.read.user).toEqual({ perSecond: 5, burst: 7 });
    expect(rateLimits.write.ip).toBeUndefined();
  });
});
