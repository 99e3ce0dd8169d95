// lib/redis.ts: a command Redis does not answer within the timeout fails, as
// with ioredis's commandTimeout, with one timer per connection instead of one
// per command (failSlowCommands).
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createRedis } from "../../lib/redis.js";
import { startTestRedis, type TestRedis } from "../support/redis.js";

const log = pino({ level: "silent" });
let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startTestRedis();
  redis = createRedis({ url: server.url, commandTimeoutMs: 200 }, log, "timeout-test");
  await new Promise<void>((resolve) => (redis.status === "ready" ? resolve() : redis.once("ready", () => resolve())));
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

describe("Redis command timeouts", () => {
  it("answers commands as before, without a timer per command", async () => {
    const timers = vi.spyOn(globalThis, "setTimeout");
    try {
      await redis.set("k", "v");
      const many = await Promise.all(Array.from({ length: 500 }, () => redis.get("k")));
      expect(many.every((v) => v === "v")).toBe(true);
      const pipelined = await redis.pipeline().get("k").incr("n").exec();
      expect(pipelined?.map(([err]) => err)).toEqual([null, null]);
      // ioredis's commandTimeout armed one per command (502 here); the sweeps arm a few.
      expect(timers.mock.calls.length).toBeLessThan(10);
    } finally {
      timers.mockRestore();
    }
  });

  it("fails what Redis does not answer in time, every command of the batch, and goes on once Redis answers again", async () => {
    // Another connection pauses every client for a second: a frozen Redis.
    const pauser = new Redis(server.url);
    await pauser.client("PAUSE", 1000, "ALL");
    const stuck = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => redis.get(`k${i}`)));
    expect(stuck.map((r) => (r.status === "rejected" ? (r.reason as Error).message : "answered"))).toEqual(Array(20).fill("Command timed out"));
    pauser.disconnect();
    // The pause ends on its own; the late replies of the failed commands change nothing.
    await expect.poll(async () => redis.get("k").catch((err: Error) => err.message), { timeout: 5000 }).toBe("v");
    expect(await redis.incr("n")).toBe(2);
  });
});
