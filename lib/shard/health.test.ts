import { describe, expect, it } from "vitest";
import { effectiveLagMs, lagSampleFrom, replicaEligible } from "./health.js";

describe("replica eligibility", () => {
  it("counts the age of the measurement as lag", () => {
    const sample = { lagMs: 200, at: 1000 };
    expect(effectiveLagMs(sample, 1000)).toBe(200);
    expect(effectiveLagMs(sample, 1500)).toBe(700);
    expect(replicaEligible(sample, 1800, 1000)).toBe(true);
    // No newer measurement: the replica ages out on its own.
    expect(replicaEligible(sample, 1801, 1000)).toBe(false);
  });

  it("never trusts a replica it has not measured", () => {
    expect(effectiveLagMs(undefined, 0)).toBeUndefined();
    expect(replicaEligible(undefined, 0, 1_000_000)).toBe(false);
  });

  it("reads the heartbeat query's answer; no row or NULL is unknown, skew below zero is zero", () => {
    expect(lagSampleFrom([{ lag_us: "1500" }], 7)).toEqual({ lagMs: 1.5, at: 7 });
    expect(lagSampleFrom([{ lag_us: "-300" }], 7)).toEqual({ lagMs: 0, at: 7 });
    expect(lagSampleFrom([], 7)).toBeUndefined();
    expect(lagSampleFrom([{ lag_us: null }], 7)).toBeUndefined();
  });
});
