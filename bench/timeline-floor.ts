/**
 * The floor of bench/timeline.ts, forked by it: a bare node:http server that
 * does, per request, the Redis reads a home-timeline page costs the timeline
 * service (services/timeline/lists.ts, the same scripts and commands: the page
 * with its TTL renewal, whether the following set is cached, the hot authors
 * followed, then which page authors are still followed and the hot authors'
 * recent lists), and answers the page's tweet ids as JSON. No token check, no
 * RPC hop, no hydration, no metrics.
 *
 *   GET /home?user=<id>&n=<page size>
 *
 * Reports { type: "ready", port } over IPC; exits when the IPC channel closes.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { TIMELINE_DEFAULTS } from "../services/timeline/config.js";
import { createTimelineLists } from "../services/timeline/lists.js";

const redisUrl = process.env.REDIS_URL;
if (redisUrl === undefined) throw new Error("REDIS_URL is required");
const redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
await new Promise<void>((resolve) => redis.once("ready", () => resolve()));
const lists = createTimelineLists(redis);
const ttlMs = Number(process.env.CHIRP_TIMELINE_INACTIVE_MS ?? TIMELINE_DEFAULTS.inactiveMs);

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://floor");
  const user = BigInt(url.searchParams.get("user") ?? "0");
  const n = Number(url.searchParams.get("n") ?? "20");
  (async () => {
    const read = await lists.readHome(user, undefined, n + 5, ttlMs);
    if (read.page.state !== "built") throw new Error("list not built");
    const followed = read.following?.followed;
    const ids = read.page.entries.filter((e) => e.authorId === user || followed === undefined || followed.has(e.authorId)).slice(0, n);
    return { ids: ids.map((e) => String(e.id)), hot: read.following?.hot.length ?? 0 };
  })().then(
    (body) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    },
    (err: unknown) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(err));
    },
  );
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => process.send?.({ type: "ready", port: (server.address() as AddressInfo).port }));
process.on("disconnect", () => {
  server.close();
  redis.disconnect();
  process.exit(0);
});
