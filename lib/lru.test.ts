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
