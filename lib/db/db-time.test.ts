import { describe, expect, it } from "vitest";
import { dbTimeFromMicros, microsFromDbTime, microsFromTimestamp, timestampFromMicros } from "./db-time.js";

describe("DATETIME(6) text <-> microseconds", () => {
  it("round-trips to the microsecond", () => {
    for (const text of ["2026-03-01 12:00:00.123456", "1970-01-01 00:00:00.000001", "2099-12-31 23:59:59.999999"]) {
      expect(dbTimeFromMicros(microsFromDbTime(text))).toBe(text);
    }
    expect(microsFromDbTime("1970-01-01 00:00:01.000002")).toBe(1_000_002n);
  });

  it("refuses anything else", () => {
    expect(() => microsFromDbTime("2026-03-01 12:00:00")).toThrow(RangeError);
  });

  it("converts to and from protobuf timestamps", () => {
    const ts = timestampFromMicros(1_780_000_000_123_456n);
    expect(ts.seconds).toBe(1_780_000_000n);
    expect(ts.nanos).toBe(123_456_000);
    expect(microsFromTimestamp(ts)).toBe(1_780_000_000_123_456n);
  });
});
