// lib/redis-scripts.ts against a redis-server: a script defined with
// defineScript runs on the auto-pipelined client and on explicit pipelines as
// one defined with defineCommand does (EVAL again after the server lost its
// scripts), and no Pipeline copies it onto itself.
import type { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis } from "../../lib/redis.js";
import { defineScript } from "../../lib/redis-scripts.js";
import { startTestRedis, type TestRedis } from "../support/redis.js";

const log = pino({ level: "silent" });
let server: TestRedis;
let redis: Redis;

interface Scripts {
  chirpTestIncrBy(key: string, by: number): Promise<string>;
  chirpTestKeys(numKeys: number, ...keysThenArgs: string[]): Promise<string[]>;
}

const INCR_BY = "return tostring(redis.call('INCRBY', KEYS[1], ARGV[1]))";
const KEYS_AND_ARGS = "local out = {} for i = 1, #KEYS do out[#out + 1] = KEYS[i] end for i = 1, #ARGV do out[#out + 1] = ARGV[i] end return out";

beforeAll(async () => {
  server = await startTestRedis();
  redis = createRedis({ url: server.url, commandTimeoutMs: 2000 }, log, "scripts-test");
  await new Promise<void>((resolve) => (redis.status === "ready" ? resolve() : redis.once("ready", () => resolve())));
  defineScript(redis, "chirpTestIncrBy", { numberOfKeys: 1, lua: INCR_BY });
  defineScript(redis, "chirpTestKeys", { lua: KEYS_AND_ARGS });
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

describe("defineScript", () => {
  it("runs on the client, auto-pipelined with other commands, replies as strings", async () => {
    const scripts = redis as unknown as Scripts;
    const [a, b, c] = await Promise.all([scripts.chirpTestIncrBy("n", 2), scripts.chirpTestIncrBy("n", 3), redis.get("n")]);
    expect([a, b]).toEqual(["2", "5"]);
    // Sent in the same turn as the scripts, answered after them: one pipeline, in order.
    expect(c).toBe("5");
    expect(await scripts.chirpTestKeys(2, "k1", "k2", "a1")).toEqual(["k1", "k2", "a1"]);
  });

  it("runs on an explicit pipeline, which copies no script onto itself", async () => {
    const p = redis.pipeline();
    expect(Object.keys(p).filter((k) => k.startsWith("chirpTest"))).toEqual([]);
    (p as unknown as Scripts).chirpTestIncrBy("m", 7);
    p.get("m");
    expect(await p.exec()).toEqual([
      [null, "7"],
      [null, "7"],
    ]);
  });

  it("loads the script again after the server lost it (SCRIPT FLUSH), on the client and on a pipeline", async () => {
    const scripts = redis as unknown as Scripts;
    await scripts.chirpTestIncrBy("f", 1);
    await redis.script("FLUSH");
    expect(await scripts.chirpTestIncrBy("f", 1)).toBe("2");
    await redis.script("FLUSH");
    const p = redis.pipeline();
    (p as unknown as Scripts).chirpTestIncrBy("f", 1);
    await p.exec();
    expect(await redis.get("f")).toBe("3");
  });

  it("refuses one name for two different scripts", () => {
    expect(() => defineScript(redis, "chirpTestIncrBy", { numberOfKeys: 1, lua: "return 0" })).toThrow(/already defined/);
    // The same script again (another service's context in this process) is fine.
    expect(() => defineScript(redis, "chirpTestIncrBy", { numberOfKeys: 1, lua: INCR_BY })).not.toThrow();
  });
});
