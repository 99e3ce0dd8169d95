import { describe, expect, it } from "vitest";
import { LruMap } from "./lru.js";

describe("LruMap", () => {
  it("forgets the least recently used entry beyond its capacity", () => {
    const lru = new LruMap<number, string>(2);
    lru.set(1, "a");
    lru.set(2, "b");
    expect(lru.get(1)).toBe("a"); // 2 is now the oldest
    lru.set(3, "c");
    expect(lru.get(2)).toBeUndefined();
    expect(lru.get(1)).toBe("a");
    expect(lru.get(3)).toBe("c");
    expect(lru.size).toBe(2);
  });

  it("keeps nothing at capacity 0", () => {
    const lru = new LruMap<number, string>(0);
    lru.set(1, "a");
    expect(lru.get(1)).toBeUndefined();
  });
});

describe("LruMap with recent entries left in place", () => {
  it("forgets only entries unused for at least half its capacity of insertions", () => {
    const lru = new LruMap<number, number>(10);
    for (let i = 0; i < 10; i++) lru.set(i, i);
    // 0..4 are in the older half: a hit moves them to the end.
    for (let i = 0; i < 5; i++) expect(lru.get(i)).toBe(i);
    // Five new entries push out the five not used since they were set (5..9).
    for (let i = 10; i < 15; i++) lru.set(i, i);
    expect([...Array(15).keys()].filter((i) => lru.get(i) !== undefined)).toEqual([0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
    expect(lru.size).toBe(10);
  });

  it("keeps a key used in every window of half its capacity however many others pass through", () => {
    const lru = new LruMap<string, number>(8);
    lru.set("hot", 1);
    for (let i = 0; i < 1000; i++) {
      lru.set(`k${i}`, i);
      if (i % 4 === 3) expect(lru.get("hot")).toBe(1);
    }
    expect(lru.size).toBe(8);
  });
});

describe("LruMap against a model", () => {
  /** The same rules on a plain array, oldest first: what LruMap must do, however its Map is laid out inside. */
  class Model {
    readonly order: Array<{ key: number; value: number; stamp: number }> = [];
    clock = 0;
    constructor(readonly capacity: number) {}
    get(key: number): number | undefined {
      const at = this.order.findIndex((e) => e.key === key);
      if (at < 0) return undefined;
      const entry = this.order[at]!;
      if (this.clock - entry.stamp >= Math.floor(this.capacity / 2)) {
        this.order.splice(at, 1);
        entry.stamp = ++this.clock;
        this.order.push(entry);
      }
      return entry.value;
    }
    set(key: number, value: number): void {
      if (this.capacity === 0) return;
      const at = this.order.findIndex((e) => e.key === key);
      if (at >= 0) this.order.splice(at, 1);
      this.order.push({ key, value, stamp: ++this.clock });
      if (this.order.length > this.capacity) this.order.shift();
    }
  }

  it("agrees with it over long runs of sets and gets, through the Map's compactions", () => {
    for (const capacity of [1, 2, 7, 64]) {
      let seed = capacity;
      const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
      const lru = new LruMap<number, number>(capacity);
      const model = new Model(capacity);
      for (let i = 0; i < 20_000; i++) {
        // Mostly new keys (evictions, holes at the front), some hits and overwrites of recent ones.
        const key = random(4) === 0 ? random(capacity * 2) : 1_000 + i;
        if (random(3) === 0) expect(lru.get(key)).toBe(model.get(key));
        else {
          lru.set(key, i);
          model.set(key, i);
        }
      }
      expect(lru.size).toBe(model.order.length);
      for (const { key, value } of model.order) expect(lru.get(key)).toBe(value);
    }
  });
});
