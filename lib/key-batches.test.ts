import { afterEach, describe, expect, it, vi } from "vitest";
import { keyBatches } from "./key-batches.js";

/** A batch runner whose batches finish when the test says so. */
function controlled(lingerMs = 0) {
  const runs: Array<{ key: string; items: number[]; finish: (err?: Error) => void }> = [];
  const submit = keyBatches<string, number, string>(
    (key, items) =>
      new Promise((resolve, reject) => {
        runs.push({ key, items: [...items], finish: (err) => (err ? reject(err) : resolve(items.map((i) => `${key}:${i}`))) });
      }),
    { maxBatch: 3, lingerMs },
  );
  return { runs, submit };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("keyBatches", () => {
  it("runs a key's first item at once, alone, and what arrives meanwhile as the next batch, in arrival order", async () => {
    const { runs, submit } = controlled();
    const first = submit("a", 1);
    expect(runs.map((r) => r.items)).toEqual([[1]]);
    const later = [submit("a", 2), submit("a", 3)];
    expect(runs).toHaveLength(1);
    runs[0]!.finish();
    expect(await first).toBe("a:1");
    await tick();
    expect(runs.map((r) => r.items)).toEqual([[1], [2, 3]]);
    runs[1]!.finish();
    expect(await Promise.all(later)).toEqual(["a:2", "a:3"]);
  });

  it("keeps keys apart, and caps a batch at maxBatch (the rest run next)", async () => {
    const { runs, submit } = controlled();
    const a = [submit("a", 1)];
    const b = submit("b", 1);
    expect(runs.map((r) => [r.key, r.items])).toEqual([["a", [1]], ["b", [1]]]);
    for (let i = 2; i <= 6; i++) a.push(submit("a", i));
    runs[0]!.finish();
    await tick();
    expect(runs.slice(2).map((r) => r.items)).toEqual([[2, 3, 4]]);
    runs[2]!.finish();
    await tick();
    expect(runs.slice(3).map((r) => r.items)).toEqual([[5, 6]]);
    runs[3]!.finish();
    runs[1]!.finish();
    expect(await Promise.all(a)).toEqual(["a:1", "a:2", "a:3", "a:4", "a:5", "a:6"]);
    expect(await b).toBe("b:1");
  });

  it("fails every item of a failed batch, and goes on with the next one", async () => {
    const { runs, submit } = controlled();
    const first = submit("a", 1);
    const second = submit("a", 2);
    runs[0]!.finish(new Error("deadlock"));
    await expect(first).rejects.toThrow("deadlock");
    await tick();
    runs[1]!.finish();
    expect(await second).toBe("a:2");
  });

  describe("with lingerMs", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("holds an idle key's first item that long, and runs what arrived meanwhile with it; a busy key's next batch goes at once", async () => {
      vi.useFakeTimers();
      const { runs, submit } = controlled(20);
      const early = [submit("a", 1), submit("a", 2)];
      const other = submit("b", 1);
      vi.advanceTimersByTime(19);
      expect(runs).toHaveLength(0);
      const third = submit("a", 3);
      const fourth = submit("a", 4); // past maxBatch (3): the next batch
      vi.advanceTimersByTime(1);
      expect(runs.map((r) => [r.key, r.items])).toEqual([["a", [1, 2, 3]], ["b", [1]]]);
      const fifth = submit("a", 5);
      runs[0]!.finish();
      expect(await Promise.all([...early, third])).toEqual(["a:1", "a:2", "a:3"]);
      // The key stayed busy: its waiting items run as soon as the batch before them is done.
      await vi.advanceTimersByTimeAsync(0);
      expect(runs.slice(2).map((r) => r.items)).toEqual([[4, 5]]);
      runs[2]!.finish();
      runs[1]!.finish();
      expect(await Promise.all([fourth, fifth, other])).toEqual(["a:4", "a:5", "b:1"]);
      // Idle again: the next first item lingers again.
      const later = submit("a", 6);
      await vi.advanceTimersByTimeAsync(10);
      expect(runs).toHaveLength(3);
      await vi.advanceTimersByTimeAsync(10);
      expect(runs.slice(3).map((r) => r.items)).toEqual([[6]]);
      runs[3]!.finish();
      expect(await later).toBe("a:6");
    });
  });

  it("fails the items when the runner throws or gives the wrong number of results, and frees the key", async () => {
    let calls = 0;
    const submit = keyBatches<string, number, number>((_key, items) => {
      calls++;
      if (calls === 1) throw new Error("thrown");
      if (calls === 2) return Promise.resolve([]);
      return Promise.resolve(items.map((i) => i * 10));
    });
    await expect(submit("k", 1)).rejects.toThrow("thrown");
    await expect(submit("k", 2)).rejects.toThrow("a batch of 1 gave 0 results");
    expect(await submit("k", 3)).toBe(30);
  });
});
