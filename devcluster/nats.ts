// A private nats-server with JetStream, storing under the data dir.
import { mkdir, writeFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
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
  /**
   * Extra NATS accounts, each with JetStream and one user (nats-url.ts): a
   * client that logs in as one sees only that account's subjects, streams
   * and KV buckets. Clients without credentials keep the default account.
   */
  accounts?: readonly NatsAccount[] | undefined;
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
        ...(opts.accounts === undefined || opts.accounts.length === 0 ? [] : ["-c", await writeAccountsConfig(opts.dir, opts.accounts)]),
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

export interface NatsAccount {
  readonly user: string;
  readonly password: string;
}

/**
 * A config file declaring one account per user. `no_auth_user` keeps clients
 * without credentials working, in an account of their own (DEFAULT).
 */
async function writeAccountsConfig(dir: string, accounts: readonly NatsAccount[]): Promise<string> {
  const path = join(dir, "accounts.conf");
  const q = (s: string): string => JSON.stringify(s);
  const lines = [
    "accounts {",
    `  DEFAULT: { jetstream: enabled, users: [ { user: "default", password: ${q(randomUUID())} } ] }`,
    ...accounts.map((a) => `  ${q(`A_${a.user}`)}: { jetstream: enabled, users: [ { user: ${q(a.user)}, password: ${q(a.password)} } ] }`),
    "}",
    'no_auth_user: "default"',
    "",
  ];
  await writeFile(path, lines.join("\n"), { mode: 0o600 });
  return path;
}

/** The monitor's health check; with js-enabled-only it also requires JetStream. */
async function jetStreamHealthy(monitorUrl: string): Promise<boolean> {
  const res = await fetch(`${monitorUrl}/healthz?js-enabled-only=true`, { signal: AbortSignal.timeout(1_000) });
  await res.body?.cancel();
  return res.ok;
}
