// A private nats-server with JetStream, storing under the data dir.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { isAddressInUse, reapOrphan, spawnServer, waitReady, type ClusterLog, type ManagedProcess } from "./process.js";
import type { Reaper } from "./reaper.js";

export interface RunningNats {
  url: string;
  monitorUrl: string;
  proc: ManagedProcess;
}

export async function startNats(opts: {
  binary: string;
  dir: string;
  log: ClusterLog;
  reaper?: Reaper | undefined;
  /** A restart: the old client port (clients reconnect to the same URL); default a free one. */
  port?: number | undefined;
}): Promise<RunningNats> {
  await mkdir(opts.dir, { recursive: true });
  const pidFile = join(opts.dir, "nats.pid");
  await reapOrphan(pidFile, opts.dir, opts.log);
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const monitorPort = await freePort();
    opts.log(`starting nats on 127.0.0.1:${port} (monitor ${monitorPort})...`);
    const logPath = join(opts.dir, "nats.log");
    const proc = spawnServer({
      name: "nats",
      command: opts.binary,
      args: [
        "-js",
        "-sd", join(opts.dir, "jetstream"),
        "-a", "127.0.0.1",
        "-p", String(port),
        "-m", String(monitorPort),
        // Stable across restarts (the default is a fresh random id).
        "-n", "chirp-local",
        "-l", logPath,
        "-P", pidFile,
      ],
      logPath,
      reaper: opts.reaper,
      stopTimeoutMs: 10_000,
    });
    const monitorUrl = `http://127.0.0.1:${monitorPort}`;
    try {
      await waitReady({ proc, timeoutMs: 30_000, probe: () => jetStreamHealthy(monitorUrl) });
      return { url: `nats://127.0.0.1:${port}`, monitorUrl, proc };
    } catch (err) {
      await proc.stop();
      if (attempt < 3 && isAddressInUse(err) && opts.port === undefined) continue;
      throw err;
    }
  }
}

/** The monitor's health check; with js-enabled-only it also requires JetStream. */
async function jetStreamHealthy(monitorUrl: string): Promise<boolean> {
  const res = await fetch(`${monitorUrl}/healthz?js-enabled-only=true`, { signal: AbortSignal.timeout(1_000) });
  await res.body?.cancel();
  return res.ok;
}
