/**
 * The floor of bench/notifications.ts, forked by it: a bare node:http server
 * that answers each request with one Redis GET of bytes the bench prepared
 * (the gateway's own answer to the same read), which is the least a
 * cache-first read can do. No token check, no RPC hop, no hydration, no metrics.
 *
 *   GET /get?key=<redis key>
 *
 * Reports { type: "ready", port } over IPC; exits when the IPC channel closes.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";

const redisUrl = process.env.REDIS_URL;
if (redisUrl === undefined) throw new Error("REDIS_URL is required");
const redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
await new Promise<void>((resolve) => redis.once("ready", () => resolve()));

const server = createServer((req, res) => {
  const key = new URL(req.url ?? "/", "http://floor").searchParams.get("key") ?? "";
  redis.getBuffer(key).then(
    (body) => {
      if (body === null) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(body);
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
