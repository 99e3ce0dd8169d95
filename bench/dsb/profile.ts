/**
 * Reads the V8 CPU profiles the mesh processes wrote (cpu-profile-preload.mjs:
 * <pid>.cpuprofile, started and stopped by SIGUSR2 around the measured window)
 * and summarizes each one's samples, optionally cut to a time window (the
 * monotonic clock in µs): self time by function and by package, with idle,
 * "(garbage collector)" and "(program)" (native code outside JS: the event
 * loop, I/O, syscalls) apart.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProcessProfile {
  readonly process: string;
  /** Sampled time in the window, ms. */
  readonly windowMs: number;
  readonly idleMs: number;
  /** Time not idle: what the percentages below are of. */
  readonly busyMs: number;
  readonly topFunctions: Array<{ readonly name: string; readonly selfMs: number; readonly percentOfBusy: number }>;
  readonly byPackage: Array<{ readonly name: string; readonly selfMs: number; readonly percentOfBusy: number }>;
}

const ROOT_MARK = "/work/main/";

function where(url: string): string {
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (nm !== null) return nm[1]!;
  if (url.startsWith("node:")) return url;
  if (url === "") return "";
  const i = url.indexOf("/services/") >= 0 ? url.indexOf("/services/") : url.indexOf("/gateway/") >= 0 ? url.indexOf("/gateway/") : url.indexOf("/gen/");
  return i >= 0 ? url.slice(i + 1) : url.replace(ROOT_MARK, "");
}

function packageOf(frame: CallFrame): string {
  const w = where(frame.url);
  if (w === "") return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  if (w.startsWith("node:")) return "node internals";
  if (w.startsWith("services/") || w.startsWith("gateway/") || w.startsWith("gen/")) return `chirp ${w.split("/").slice(0, 2).join("/")}`;
  return w;
}

export function summarizeProfile(name: string, file: string, window: { start: number; end: number }, top = 12): ProcessProfile {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const pkg = new Map<string, number>();
  let t = p.startTime;
  let windowUs = 0;
  let idleUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < window.start || t > window.end) continue;
    const delta = p.timeDeltas[i + 1] ?? 0;
    const node = byId.get(p.samples[i]!);
    if (node === undefined) continue;
    windowUs += delta;
    const frame = node.callFrame;
    if (frame.functionName === "(idle)") {
      idleUs += delta;
      continue;
    }
    const key = `${frame.functionName || "(anonymous)"}${frame.url === "" ? "" : ` ${where(frame.url)}:${frame.lineNumber + 1}`}`;
    fn.set(key, (fn.get(key) ?? 0) + delta);
    const k = packageOf(frame);
    pkg.set(k, (pkg.get(k) ?? 0) + delta);
  }
  const busyUs = windowUs - idleUs;
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => ({ name: k, selfMs: Math.round(us / 100) / 10, percentOfBusy: busyUs === 0 ? 0 : Math.round((us / busyUs) * 1000) / 10 }));
  return {
    process: name,
    windowMs: Math.round(windowUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    topFunctions: rank(fn),
    byPackage: rank(pkg),
  };
}

/** The profile each named pid wrote into `dir` (cpu-profile-preload.mjs names them <pid>.cpuprofile). */
export function findProfiles(dir: string, pids: Readonly<Record<string, number>>): Record<string, string> {
  const files = new Set(readdirSync(dir));
  const out: Record<string, string> = {};
  for (const [name, pid] of Object.entries(pids)) if (files.has(`${pid}.cpuprofile`)) out[name] = join(dir, `${pid}.cpuprofile`);
  return out;
}

/** The allocation counts each named pid wrote into `dir` over the profiled window (cpu-profile-preload.mjs: <pid>.allocations.json). */
export function findAllocations(dir: string, pids: Readonly<Record<string, number>>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [name, pid] of Object.entries(pids)) {
    try {
      out[name] = JSON.parse(readFileSync(join(dir, `${pid}.allocations.json`), "utf8")) as Record<string, number>;
    } catch {
      // this process wrote none (not profiled, or it died)
    }
  }
  return out;
}
