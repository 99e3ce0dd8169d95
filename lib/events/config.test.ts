import { describe, expect, it } from "vitest";
import { ConfigError } from "../config.js";
import { BUS_DEFAULTS, RELAY_DEFAULTS, loadBusConfig, loadRelayConfig } from "./config.js";

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

describe("loadBusConfig", () => {
  it("defaults to no bus and the documented stream limits", () => {
    expect(loadBusConfig({})).toEqual({ natsUrl: undefined, ...BUS_DEFAULTS });
  });

  it("takes NATS_URL (several servers too) and the stream knobs", () => {
    const c = loadBusConfig({
      NATS_URL: "nats://a:4222, nats://b:4222",
      CHIRP_EVENTS_MAX_AGE_MS: "3600000",
      CHIRP_EVENTS_DUPLICATE_WINDOW_MS: "60000",
      CHIRP_EVENTS_MAX_BYTES: "1073741824",
    });
    expect(c).toMatchObject({ natsUrl: "nats://a:4222, nats://b:4222", maxAgeMs: 3_600_000, duplicateWindowMs: 60_000, maxBytes: 1_073_741_824 });
  });

  it("lists every problem at once", () => {
    const problems = problemsOf(() =>
      loadBusConfig({ NATS_URL: "http://x", CHIRP_EVENTS_MAX_AGE_MS: "120000", CHIRP_EVENTS_DUPLICATE_WINDOW_MS: "600000", CHIRP_EVENTS_MAX_BYTES: "0" }),
    );
    expect(problems).toHaveLength(3);
  });
});

describe("loadRelayConfig", () => {
  it("defaults", () => {
    expect(loadRelayConfig({})).toEqual(RELAY_DEFAULTS);
  });

  it("reads CHIRP_RELAY_*", () => {
    const c = loadRelayConfig({ CHIRP_RELAY_ENABLED: "false", CHIRP_RELAY_BATCH_SIZE: "64", CHIRP_RELAY_LEASE_TTL_MS: "30000", CHIRP_RELAY_LEASE_RENEW_MS: "5000" });
    expect(c).toMatchObject({ enabled: false, batchSize: 64, leaseTtlMs: 30_000, leaseRenewMs: 5000 });
  });

  it("refuses a renewal period too long for the lease, and inverted retry bounds, together with bad values", () => {
    const problems = problemsOf(() =>
      loadRelayConfig({
        CHIRP_RELAY_LEASE_TTL_MS: "3000",
        CHIRP_RELAY_LEASE_RENEW_MS: "2000",
        CHIRP_RELAY_RETRY_MIN_MS: "900",
        CHIRP_RELAY_RETRY_MAX_MS: "100",
        CHIRP_RELAY_BATCH_SIZE: "0",
        CHIRP_RELAY_ENABLED: "yes",
      }),
    );
    expect(problems).toHaveLength(4);
  });
});
