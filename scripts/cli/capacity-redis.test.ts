// The Redis memory figures `chirp capacity` uses are measured here, against a
// real redis-server: a full home timeline (800 entries in the layout the
// timeline service writes, plus its sentinel) and a following set, sized
// with MEMORY USAGE. The figures must stay within a quarter of what this
// Redis reports, so a change of layout or of Redis shows up here.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import { findBinary } from "../../devcluster/binaries.js";
import { REPO_ROOT } from "../../devcluster/index.js";
import { startRedis, type RunningRedis } from "../../devcluster/redis.js";
import { createIdGenerator } from "../../lib/ids.js";
import { entryMember, entryScore, padId } from "../../services/timeline/entries.js";
import { FIGURES } from "./capacity-figures.js";
import { parseArgs } from "./capacity.js";

const defaults = parseArgs([]).inputs;
let dir: string;
let server: RunningRedis;
let redis: Redis;

beforeAll(async () => {
  mkdirSync(join(REPO_ROOT, ".data"), { recursive: true });
  dir = mkdtempSync(join(REPO_ROOT, ".data", "capacity-redis-"));
  server = await startRedis({ binary: findBinary("redis-server", { path: process.env["PATH"] }), dir, log: () => {} });
  redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

afterAll(async () => {
  redis?.disconnect();
  await server?.proc.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Snowflake-sized user ids, spread as real ones are. */
const userIds = (n: number, seed: bigint): bigint[] => Array.from({ length: n }, (_, i) => 117_729_304_896_339_968n + seed + BigInt(i) * 7_919_000_003n);

it("one home timeline entry costs about what the capacity model says", async () => {
  const ids = createIdGenerator(3);
  const authors = userIds(200, 11n);
  const key = "chirp:tl:home:{117729304896339968}";
  const args: (string | number)[] = [0, `f${padId(0n)}`]; // the sentinel at score 0
  for (let i = 0; i < 800; i++) {
    const id = ids.next();
    args.push(entryScore(id), entryMember({ id, authorId: authors[i % authors.length]! }));
  }
  await redis.zadd(key, ...args);
  const perEntry = Number(await redis.memory("USAGE", key)) / 800;
  const figure = FIGURES.redisEntryBytes.assume(defaults).value;
  expect(perEntry).toBeGreaterThan(figure * 0.75);
  expect(perEntry).toBeLessThan(figure * 1.25);
});

it("one member of a following set costs about what the capacity model says", async () => {
  const key = "chirp:tl:following:{117729304896339968}";
  await redis.sadd(key, "*", ...userIds(200, 5n).map(String));
  const perMember = Number(await redis.memory("USAGE", key)) / 200;
  const figure = FIGURES.redisFollowingMemberBytes.assume(defaults).value;
  expect(perMember).toBeGreaterThan(figure * 0.75);
  expect(perMember).toBeLessThan(figure * 1.25);
});
