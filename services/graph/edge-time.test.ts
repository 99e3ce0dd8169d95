import { describe, expect, it } from "vitest";
import { dbTimeFromMicros, microsFromDbTime, microsFromTimestamp, timestampFromMicros } from "./edge-time.js";

describe("follow times", () => {
  it("keep microseconds between DATETIME(6) text, integers and Timestamps", () => {
    const text = "2026-03-01 12:34:56.123456";
    const micros = microsFromDbTime(text);
    expect(micros).toBe(BigInt(Date.UTC(2026, 2, 1, 12, 34, 56)) * 1000n + 123_456n);
    expect(dbTimeFromMicros(micros)).toBe(text);
    const ts = timestampFromMicros(micros);
    expect(ts.nanos).toBe(123_456_000);
    expect(microsFromTimestamp(ts)).toBe(micros);
  });

  it("pad small fractions", () => {
    expect(dbTimeFromMicros(microsFromDbTime("2026-01-01 00:00:00.000007"))).toBe("2026-01-01 00:00:00.000007");
    expect(dbTimeFromMicros(microsFromDbTime("2026-01-01 00:00:00.000000"))).toBe("2026-01-01 00:00:00.000000");
  });

  it("refuse text that is not DATETIME(6)", () => {
    expect(() => microsFromDbTime("2026-01-01 00:00:00")).toThrow(RangeError);
  });
});
