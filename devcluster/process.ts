// Child server processes: spawn with output to a log file, wait for readiness
// with a deadline, stop with SIGTERM then SIGKILL.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync, readlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import type { Reaper } from "./reaper.js";

export type ClusterLog = (line: string) => void;

export const defaultClusterLog: ClusterLog = (line) => console.error(`[cluster] ${line}`);

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Set once the process has exited (for any reason). */
  readonly exitCode: number | null;
  readonly exited: boolean;
  /** Resolves when the process has exited. */
  readonly whenExited: Promise<void>;
  /** SIGTERM, wait up to `timeoutMs`, then SIGKILL. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

export class ServerStartError extends Error {
  override readonly name = "ServerStartError";
  readonly code = "SERVER_START_FAILED";
  constructor(
    readonly server: string,
    message: string,
    readonly logTail: string,
    options?: { cause?: unknown },
  ) {
    super(logTail ? `${server}: ${message}; last lines of its log:\n${logTail}` : `${server}: ${message}`, options);
  }
}

export interface SpawnServerOptions {
  name: string;
  command: string;
  args: readonly string[];
  /** stdout and stderr are appended here; servers should log here too. */
  logPath: string;
  cwd?: string;
  reaper?: Reaper | undefined;
  stopTimeoutMs?: number;
}

export function spawnServer(opts: SpawnServerOptions): ManagedProcess {
  const fd = openSync(opts.logPath, "a", 0o600);
  let child: ChildProcess;
  try {
    // Own process group: a terminal Ctrl-C reaches only us, so the caller
    // stops things in order (services drain while NATS and Redis are still
    // up; mariadbd would ignore SIGINT anyway). If we die without stopping
    // them, the reaper sends them SIGTERM.
    child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { ...minimalEnv(), LC_ALL: "C" },
    });
  } finally {
    closeSync(fd);
  }
  let spawnError: unknown;
  child.on("error", (err) => {
    spawnError ??= err;
  });
  const pid = child.pid;
  if (pid === undefined) {
    // spawn reports ENOENT etc. asynchronously; the pid is missing in that case.
    throw new ServerStartError(opts.name, `could not spawn ${opts.command}`, "", { cause: spawnError });
  }
  opts.reaper?.watch(pid);

  let exitCode: number | null = null;
  let exited = false;
  const whenExited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = true;
      exitCode = code ?? (signal ? 128 : null);
      opts.reaper?.forget(pid);
      resolve();
    });
    child.once("error", () => {
      // An 'error' without 'exit' means the process never ran.
      if (child.exitCode === null && child.signalCode === null && !exited) {
        exited = true;
        opts.reaper?.forget(pid);
        resolve();
      }
    });
  });

  let stopping: Promise<void> | undefined;
  return {
    name: opts.name,
    pid,
    logPath: opts.logPath,
    get exitCode() {
      return exitCode;
    },
    get exited() {
      return exited;
    },
    whenExited,
    stop(timeoutMs = opts.stopTimeoutMs ?? 15_000) {
      stopping ??= (async () => {
        if (exited) return;
        child.kill("SIGTERM");
        const cancel = new AbortController();
        const timer = delay(timeoutMs, "timeout" as const, { signal: cancel.signal }).catch(() => "cancelled" as const);
        const outcome = await Promise.race([whenExited, timer]);
        cancel.abort();
        if (outcome === "timeout" && !exited) {
          child.kill("SIGKILL");
          await whenExited;
        }
      })();
      return stopping;
    },
  };
}

/** Just enough environment for servers; nothing of ours (URLs, secrets) leaks in. */
function minimalEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ["PATH", "HOME", "TMPDIR", "TZ"]) {
    const v = process.env[key];
    if (v !== undefined) env[key] = v;
  }
  return env;
}

export interface WaitReadyOptions {
  proc: ManagedProcess;
  /** One readiness probe: true when ready; throwing is treated as "not yet". */
  probe: () => Promise<boolean>;
  timeoutMs: number;
  intervalMs?: number;
  /** A probe error that means "will never work" (e.g. access denied). */
  isFatal?: (err: unknown) => boolean;
}

/** Polls `probe` until it succeeds, the process exits, or the deadline passes. */
export async function waitReady(opts: WaitReadyOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    if (opts.proc.exited) {
      throw new ServerStartError(
        opts.proc.name,
        `exited during startup (code ${opts.proc.exitCode})`,
        await tailFile(opts.proc.logPath),
      );
    }
    try {
      if (await opts.probe()) return;
    } catch (err) {
      if (opts.isFatal?.(err)) {
        throw new ServerStartError(opts.proc.name, `not usable: ${errMessage(err)}`, await tailFile(opts.proc.logPath), {
          cause: err,
        });
      }
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError ? `; last probe error: ${errMessage(lastError)}` : "";
      throw new ServerStartError(
        opts.proc.name,
        `not ready after ${opts.timeoutMs} ms${why}`,
        await tailFile(opts.proc.logPath),
      );
    }
    await Promise.race([delay(opts.intervalMs ?? 100), opts.proc.whenExited]);
  }
}

/** Polls a condition (not tied to a process) until true or the deadline. */
export async function pollUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe?: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) {
      const detail = describe ? `: ${await describe()}` : "";
      throw new Error(`${what}: not reached after ${timeoutMs} ms${detail}`);
    }
    await delay(100);
  }
}

/** The last `lines` lines of a log file ("" if unreadable). */
export async function tailFile(path: string, lines = 15, maxBytes = 16_384): Promise<string> {
  try {
    const fh = await open(path, "r");
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - maxBytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString("utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } finally {
      await fh.close();
    }
  } catch {
    return "";
  }
}

/** A start failure worth retrying on a new port. */
export function isAddressInUse(err: unknown): boolean {
  return err instanceof ServerStartError && /address already in use|EADDRINUSE|bind on tcp\/ip port/i.test(err.logTail);
}

/**
 * Stops a server left running by a previous run that died hard (its pid file
 * still names a live process whose command line mentions `marker`, our data
 * dir). Only called while holding the data dir lock, so it cannot be ours.
 */
export async function reapOrphan(pidFile: string, marker: string, log: ClusterLog): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !isAlive(pid)) return;
  if (!processMentions(pid, marker)) return;
  log(`stopping leftover server pid ${pid} from an earlier run`);
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + 15_000;
  while (isAlive(pid) && Date.now() < deadline) await delay(100);
  if (isAlive(pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
    while (isAlive(pid)) await delay(50);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether the process's command line or (Linux) working dir names `marker`. */
function processMentions(pid: number, marker: string): boolean {
  if (commandLine(pid)?.includes(marker)) return true;
  try {
    // redis-server rewrites its title but runs with cwd = its --dir.
    return readlinkSync(`/proc/${pid}/cwd`).startsWith(marker);
  } catch {
    return false;
  }
}

function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    // No /proc (macOS): ask ps.
  }
  try {
    return execFileSync("ps", ["-o", "command=", "-p", String(pid)], { encoding: "utf8" });
  } catch {
    return undefined;
  }
}

export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
