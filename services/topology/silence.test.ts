import { describe, expect, it } from "vitest";
import { Hearing, SILENT_MS } from "./silence.js";

describe("Hearing", () => {
  it("calls a replica silent only once its sample has not changed for SILENT_MS, counted from the first sample", () => {
    const h = new Hearing();
    expect(h.silent("r1", 1_000)).toBe(false); // never sampled
    h.record("r1", "10 bin.1:400", 1_000);
    expect(h.silent("r1", 1_000 + SILENT_MS - 1)).toBe(false);
    expect(h.silent("r1", 1_000 + SILENT_MS)).toBe(true);
  });

  it("a heartbeat or an event received starts the silence again", () => {
    const h = new Hearing();
    h.record("r1", "10 bin.1:400", 1_000);
    h.record("r1", "11 bin.1:400", 1_400); // a heartbeat
    expect(h.silent("r1", 1_000 + SILENT_MS)).toBe(false);
    h.record("r1", "11 bin.1:400", 1_000 + SILENT_MS); // the same again: still counted from 1,400
    expect(h.silent("r1", 1_400 + SILENT_MS)).toBe(true);
    h.record("r1", "11 bin.1:900", 1_400 + SILENT_MS); // an event
    expect(h.silent("r1", 1_400 + SILENT_MS)).toBe(false);
  });

  it("clear forgets every sample", () => {
    const h = new Hearing();
    h.record("r1", "1 a:1", 0);
    expect(h.sampling).toBe(true);
    h.clear();
    expect(h.sampling).toBe(false);
    expect(h.silent("r1", 10_000)).toBe(false);
  });
});
