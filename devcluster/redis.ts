// A private redis-server: loopback only, AOF persistence, no RDB snapshots.
import { mkdir } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { isAddressInUse, reapOrphan, spawnServer, waitReady, type ClusterLog, type ManagedProcess } from "./process.js";
import type { Reaper } from "./reaper.js";

export interface RunningRedis {
  url: string;
  proc: ManagedProcess;
}

export async function startRedis(opts: {
  binary: string;
  dir: string;
  log: ClusterLog;
  reaper?: Reaper | undefined;
  /** Logical databases (SELECT 0..n-1); Redis's default is 16. */
  databases?: number | undefined;
}): Promise<RunningRedis> {
  await mkdir(opts.dir, { recursive: true });
  const pidFile = join(opts.dir, "redis.pid");
  await reapOrphan(pidFile, opts.dir, opts.log);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    opts.log(`starting redis on 127.0.0.1:${port}...`);
    const logPath = join(opts.dir, "redis.log");
    const proc = spawnServer({
      name: "redis",
      command: opts.binary,
      args: [
        "--port", String(port),
        "--bind", "127.0.0.1",
        "--dir", opts.dir,
        "--appendonly", "yes",
        "--save", "",
        "--daemonize", "no",
        ...(opts.databases === undefined ? [] : ["--databases", String(opts.databases)]),
        "--pidfile", pidFile,
        "--logfile", logPath,
      ],
      logPath,
      reaper: opts.reaper,
      stopTimeoutMs: 10_000,
    });
    try {
      await waitReady({ proc, timeoutMs: 30_000, probe: () => ping(port) });
      return { url: `redis://127.0.0.1:${port}`, proc };
    } catch (err) {
      await proc.stop();
      if (attempt < 3 && isAddressInUse(err)) continue;
      throw err;
    }
  }
}

/**
 * One raw RESP PING. True only on +PONG: while it replays the AOF, redis
 * answers -LOADING, which is not ready.
 */
export function ping(port: number, host = "127.0.0.1", timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let reply = "";
    const done = (err?: Error): void => {
      sock.destroy();
      if (err) reject(err);
      else resolve(reply.startsWith("+PONG"));
    };
    sock.setTimeout(timeoutMs, () => done(new Error("redis ping timed out")));
    sock.once("error", done);
    sock.once("connect", () => sock.write("*1\r\n$4\r\nPING\r\n"));
    sock.on("data", (d) => {
      reply += d.toString("utf8");
      if (reply.includes("\r\n")) done();
    });
  });
}
