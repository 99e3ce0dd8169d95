import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ClockMovedBackwardsError, ID_EPOCH_MS, createIdGenerator, firstIdAt, parseId } from "./ids.js";

describe("snowflake ids", () => {
  it("packs 41 bits of milliseconds, 10 of node and 12 of sequence, and reads them back", () => {
    const at = ID_EPOCH_MS + 123_456_789;
    const gen = createIdGenerator(1023, () => at);
    const id = gen.next();
    expect(parseId(id)).toEqual({ timeMs: at, node: 1023, sequence: 0 });
    expect(parseId(gen.next()).sequence).toBe(1);
    expect(id >> 22n).toBe(123_456_789n);
    expect(firstIdAt(at) <= id).toBe(true);
  });

  it("is strictly increasing and unique, even past 4096 ids in one millisecond", () => {
    const gen = createIdGenerator(1, () => ID_EPOCH_MS + 1000);
    const ids = Array.from({ length: 10_000 }, () => gen.next());
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("never yields a duplicate when the clock steps back", () => {
    let t = ID_EPOCH_MS + 10_000;
    const gen = createIdGenerator(0, () => t);
    const seen = new Set<bigint>();
    for (let i = 0; i < 100; i++) seen.add(gen.next());
    t -= 3000; // a small step back: keep counting on the last millisecond
    for (let i = 0; i < 100; i++) seen.add(gen.next());
    expect(seen.size).toBe(200);
    t -= 10_000; // a large one: refuse rather than risk a repeat
    const err = (() => {
      try {
        gen.next();
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ClockMovedBackwardsError);
    expect((err as ClockMovedBackwardsError).code).toBe(Code.Unavailable);
    t += 20_000;
    expect(gen.next() > [...seen].at(-1)!).toBe(true);
  });

  it("fits a signed 64-bit column for the next decades and rejects a bad node", () => {
    expect(createIdGenerator(1023, () => Date.UTC(2090, 0, 1)).next() < 2n ** 63n).toBe(true);
    expect(() => createIdGenerator(1024)).toThrow(RangeError);
    expect(() => createIdGenerator(-1)).toThrow(RangeError);
  });

  it("mints ids of a past millisecond counting down, apart from the live ids counting up", () => {
    const now = ID_EPOCH_MS + 50_000;
    const gen = createIdGenerator(7, () => now);
    const past = ID_EPOCH_MS + 20_000;
    const backdated = [gen.at(past), gen.at(past), gen.at(now)];
    expect(backdated.map(parseId)).toEqual([
      { timeMs: past, node: 7, sequence: 4095 },
      { timeMs: past, node: 7, sequence: 4094 },
      { timeMs: now, node: 7, sequence: 4093 },
    ]);
    expect(parseId(gen.next())).toEqual({ timeMs: now, node: 7, sequence: 0 });
    expect(() => gen.at(ID_EPOCH_MS - 1)).toThrow(RangeError);
    expect(() => gen.at(past + 0.5)).toThrow(RangeError);
  });
});
