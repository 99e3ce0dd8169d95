import { describe, expect, it } from "vitest";
import { parseGtidList } from "./gtid.js";
import { betterSample, effectiveLagMs, gtidPosFrom, gtidSample, lagSampleFrom, replicaEligible } from "./health.js";

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

  it("takes a replica that applied its primary's position as current, as of the earlier probe", () => {
    const pos = parseGtidList("0-101-55");
    // Primary asked at 100, replica at 130: current as of 100.
    expect(gtidSample({ pos, at: 130 }, { pos, at: 100 })).toEqual({ lagMs: 0, at: 100 });
    // Replica asked first: current as of its own probe.
    expect(gtidSample({ pos, at: 90 }, { pos, at: 100 })).toEqual({ lagMs: 0, at: 90 });
    expect(gtidSample({ pos: parseGtidList("0-101-54"), at: 130 }, { pos, at: 100 })).toBeUndefined();
    // The primary did not answer: only the heartbeat can tell.
    expect(gtidSample({ pos, at: 130 }, undefined)).toBeUndefined();
  });

  it("keeps the better of the GTID and heartbeat samples, and ages it like any other", () => {
    const current = { lagMs: 0, at: 1000 };
    const oldBeat = { lagMs: 600_000, at: 1030 };
    expect(betterSample(current, oldBeat, 1100)).toBe(current);
    expect(betterSample(undefined, oldBeat, 1100)).toBe(oldBeat);
    expect(betterSample({ lagMs: 0, at: 0 }, { lagMs: 20, at: 1030 }, 1100)).toEqual({ lagMs: 20, at: 1030 });
    // Current at 1000 and never measured since: out of a 1 s bound after 2000.
    expect(replicaEligible(current, 2000, 1000)).toBe(true);
    expect(replicaEligible(current, 2001, 1000)).toBe(false);
  });

  it("reads a position from a probe's answer; NULL or garbage is unknown", () => {
    expect(gtidPosFrom([{ pos: "0-101-55" }])).toEqual(parseGtidList("0-101-55"));
    expect(gtidPosFrom([{ pos: "" }])).toEqual([]);
    expect(gtidPosFrom([{ pos: null }])).toBeUndefined();
    expect(gtidPosFrom([{ pos: "nonsense" }])).toBeUndefined();
    expect(gtidPosFrom([])).toBeUndefined();
  });
});
