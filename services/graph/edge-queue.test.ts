import { describe, expect, it } from "vitest";
import { createKeyedQueue } from "./edge-queue.js";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("keyed queue", () => {
  it("runs one key's tasks one at a time in order, other keys alongside", async () => {
    const q = createKeyedQueue();
    const log: string[] = [];
    let running = 0;
    let most = 0;
    const task = (key: string, i: number) =>
      q.run(key, async () => {
        running++;
        most = Math.max(most, running);
        log.push(`${key}${i}+`);
        await tick();
        log.push(`${key}${i}-`);
        running--;
        return i;
      });
    const results = await Promise.all([task("a", 1), task("a", 2), task("b", 1), task("a", 3)]);
    expect(results).toEqual([1, 2, 1, 3]);
    expect(log.filter((e) => e.startsWith("a"))).toEqual(["a1+", "a1-", "a2+", "a2-", "a3+", "a3-"]);
    expect(most).toBe(2);
    await tick();
    expect(q.size).toBe(0);
  });

  it("a failed task rejects its own caller only", async () => {
    const q = createKeyedQueue();
    const failed = q.run("a", async () => {
      throw new Error("boom");
    });
    const next = q.run("a", async () => "ok");
    await expect(failed).rejects.toThrow("boom");
    await expect(next).resolves.toBe("ok");
  });
});
