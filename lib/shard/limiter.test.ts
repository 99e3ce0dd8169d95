import { describe, expect, it } from "vitest";
import { Limiter, LimiterError } from "./limiter.js";

describe("Limiter", () => {
  it("admits up to its capacity at once and hands a freed slot to the first waiter", async () => {
    const seen: [number, number][] = [];
    const limiter = new Limiter({ capacity: 2, queueLimit: 5, onChange: (a, w) => seen.push([a, w]) });
    const r1 = await limiter.acquire(1000);
    const r2 = await limiter.acquire(1000);
    const order: number[] = [];
    const third = limiter.acquire(1000).then((r) => (order.push(3), r));
    const fourth = limiter.acquire(1000).then((r) => (order.push(4), r));
    expect([limiter.active, limiter.waiting]).toEqual([2, 2]);
    r1();
    r1(); // twice is harmless
    const r3 = await third;
    expect([limiter.active, limiter.waiting]).toEqual([2, 1]);
    r2();
    const r4 = await fourth;
    expect(order).toEqual([3, 4]);
    r3();
    r4();
    expect([limiter.active, limiter.waiting]).toEqual([0, 0]);
    expect(seen.at(-1)).toEqual([0, 0]);
  });

  it("rejects at once when the queue is full", async () => {
    const limiter = new Limiter({ capacity: 1, queueLimit: 1 });
    const held = await limiter.acquire(1000);
    const waiting = limiter.acquire(1000);
    await expect(limiter.acquire(1000)).rejects.toMatchObject({ code: "CHIRP_DB_OVERLOADED" });
    held();
    (await waiting)();
  });

  it("gives up on a waiter after its timeout and forgets it", async () => {
    const limiter = new Limiter({ capacity: 1, queueLimit: 4 });
    const held = await limiter.acquire(1000);
    await expect(limiter.acquire(20)).rejects.toMatchObject({ code: "CHIRP_DB_ACQUIRE_TIMEOUT" });
    expect(limiter.waiting).toBe(0);
    held();
    expect(limiter.active).toBe(0);
  });

  it("close() fails waiters and later callers; whenIdle() waits for holders", async () => {
    const limiter = new Limiter({ capacity: 1, queueLimit: 4 });
    const held = await limiter.acquire(1000);
    const waiter = limiter.acquire(1000);
    let idle = false;
    const whenIdle = limiter.whenIdle().then(() => (idle = true));
    limiter.close();
    await expect(waiter).rejects.toBeInstanceOf(LimiterError);
    await expect(limiter.acquire(1000)).rejects.toMatchObject({ code: "CHIRP_DB_UNAVAILABLE" });
    expect(idle).toBe(false);
    held();
    await whenIdle;
    expect(idle).toBe(true);
  });
});
