// A private redis-server for a test file that needs Redis alone (the caches'
// and lists' protocols): free port, throwaway data dir, stopped with stop().
import { rm } from "node:fs/promises";
import { Redis } from "ioredis";
import { findBinary } from "../../devcluster/binaries.js";
import { newTestDataDir } from "../../devcluster/index.js";
import { startRedis } from "../../devcluster/redis.js";

export interface TestRedis {
  readonly url: string;
  /** A client, ready: failing fast while the server is away, as the services' clients do. */
  readonly redis: Redis;
  /** Stops the server only (a test of Redis going away); stop() still cleans up. */
  stopServer(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestRedis(): Promise<TestRedis> {
  const dir = newTestDataDir();
  const server = await startRedis({ binary: findBinary("redis-server", { path: process.env["PATH"] }), dir, log: () => {} });
  const redis = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500 });
  await new Promise<void>((resolve) => redis.once("ready", () => resolve()));
  return {
    url: server.url,
    redis,
    stopServer: () => server.proc.stop(),
    async stop() {
      redis.disconnect();
      await server.proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
