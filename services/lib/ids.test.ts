import { describe, expect, it } from "vitest";
import { ClockMovedBackwardsError, ID_EPOCH_MS, createIdGenerator, parseId } from "./ids.js";

describe("snowflake ids", () => {
  it("packs time, routing byte, worker and sequence, and reads them back", () => {
    const at = ID_EPOCH_MS + 123_456_789;
    const gen = createIdGenerator(5, () => at);
    const id = gen.next(0xc3);
    expect(parseId(id)).toEqual({ timeMs: at, routingByte: 0xc3, worker: 5, sequence: 0 });
    expect(parseId(gen.next(0x01)).sequence).toBe(1);
  });

  it("is strictly increasing and unique, even past 1024 ids in one millisecond", () => {
    const gen = createIdGenerator(1, () => ID_EPOCH_MS + 1000);
    const ids = Array.from({ length: 5000 }, () => gen.next(7));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("fits a signed 64-bit column for the next decades", () => {
    const gen = createIdGenerator(15, () => Date.UTC(2090, 0, 1));
    expect(gen.next(255) < 2n ** 63n).toBe(true);
  });

  it("rides out a small clock step back and refuses a large one", () => {
    let t = ID_EPOCH_MS + 10_000;
    const gen = createIdGenerator(0, () => t);
    const a = gen.next(0);
    t -= 100;
    const b = gen.next(0);
    expect(b > a).toBe(true);
    t -= 10_000;
    expect(() => gen.next(0)).toThrow(ClockMovedBackwardsError);
  });

  it("rejects a bad worker id or routing byte", () => {
    expect(() => createIdGenerator(16)).toThrow(RangeError);
    expect(() => createIdGenerator(0).next(256)).toThrow(RangeError);
  });
});
