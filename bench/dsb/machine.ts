/**
 * What a result needs to be read later: the machine, the versions, and
 * per-process CPU and memory from /proc (Linux; elsewhere the figures are
 * left out).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import * as os from "node:os";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import { findBinary } from "../../devcluster/index.js";
import type { ShardRouter } from "../../lib/shard/router.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** USER_HZ: /proc/<pid>/stat counts CPU in ticks of 1/100 s on Linux. */
const TICKS_PER_SECOND = 100;

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model,
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

const PACKAGES = ["@connectrpc/connect", "@connectrpc/connect-node", "@grpc/grpc-js", "@bufbuild/protobuf", "ioredis", "mysql2", "@nats-io/jetstream", "argon2", "tsx"];

export function packageVersions(): Record<string, string> {
  const lock = JSON.parse(readFileSync(`${ROOT}package-lock.json`, "utf8")) as { packages: Record<string, { version?: string }> };
  return Object.fromEntries(PACKAGES.map((p) => [p, lock.packages[`node_modules/${p}`]?.version ?? "?"]));
}

export async function serverVersions(router: ShardRouter, redis: Redis): Promise<Record<string, string>> {
  const [row] = await router.primary(router.shards()[0]!).query<{ v: string }>("SELECT VERSION() AS v");
  const info = await redis.info("server");
  let nats = "?";
  try {
    nats = execFileSync(findBinary("nats-server"), ["--version"], { encoding: "utf8" }).trim();
  } catch {
    // not installed here (given by URL)
  }
  return { mysql: row?.v ?? "?", redis: /redis_version:(\S+)/.exec(info)?.[1] ?? "?", nats };
}

/** CPU seconds a process has used, in user space and in the kernel (its system calls, page faults): /proc/<pid>/stat's utime and stime. */
export interface CpuTimes {
  readonly user: number;
  readonly system: number;
}

/** CPU seconds (user and system) a process has used, or undefined. */
export function cpuTimes(pid: number): CpuTimes | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return { user: Number(fields[11]) / TICKS_PER_SECOND, system: Number(fields[12]) / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds a process's threads have run, to the nanosecond: the sum of
 * /proc/<pid>/task/<tid>/schedstat's first field over its live threads
 * (user and kernel time alike). For short windows, where /proc/<pid>/stat's
 * clock ticks (10 ms each, per process) would be most of the figure; a thread
 * that exits within a window takes its time with it. Undefined without it.
 */
export function cpuSecondsPrecise(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // the thread exited between the listing and the read
      }
    }
    return ns / 1e9;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used, or undefined. */
export function cpuSeconds(pid: number): number | undefined {
  const t = cpuTimes(pid);
  return t === undefined ? undefined : t.user + t.system;
}

/** Resident set size in MiB, or undefined. */
export function rssMiB(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** Named processes' CPU times now: cpuBetween compares two of these. */
export function cpuSnapshot(pids: Readonly<Record<string, number>>): Record<string, CpuTimes> {
  const out: Record<string, CpuTimes> = {};
  for (const [name, pid] of Object.entries(pids)) {
    const t = cpuTimes(pid);
    if (t !== undefined) out[name] = t;
  }
  return out;
}

/** One process's CPU between two snapshots. */
export interface ProcessCpu {
  readonly cpuMsPerRequest: number;
  readonly percentOfCore: number;
  /** The share of that CPU spent in the kernel (system calls: socket reads and writes, epoll; page faults), percent. */
  readonly kernelPercent: number;
}

/** Per process: CPU ms per request, percent of one core and the kernel's share, between two snapshots over `seconds`. */
export function cpuBetween(
  before: Readonly<Record<string, CpuTimes>>,
  after: Readonly<Record<string, CpuTimes>>,
  requests: number,
  seconds: number,
): Record<string, ProcessCpu> {
  const out: Record<string, ProcessCpu> = {};
  for (const [name, end] of Object.entries(after)) {
    const start = before[name] ?? end;
    const user = end.user - start.user;
    const system = end.system - start.system;
    const used = user + system;
    out[name] = {
      cpuMsPerRequest: requests === 0 ? 0 : Math.round((used / requests) * 1e6) / 1000,
      percentOfCore: Math.round((used / seconds) * 1000) / 10,
      kernelPercent: used === 0 ? 0 : Math.round((system / used) * 100),
    };
  }
  return out;
}

export function loadAverage(): number[] {
  return os.loadavg().map((x) => Math.round(x * 100) / 100);
}
