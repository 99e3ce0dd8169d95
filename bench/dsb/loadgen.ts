/**
 * The load generator: open loop (a fixed arrival rate, as wrk2 -R) or closed
 * loop (N workers, each sending its next request when the last one answers).
 *
 * Open loop is free of coordinated omission: request i is due at
 * start + i / rate whatever happened before it, and its latency is measured
 * from that due time, not from when it could be sent. So a stall shows up as
 * the latency every request due during it would have seen. Requests beyond
 * `maxInFlight` wait for a slot, their clock already running.
 *
 * Requests due (open) or started (closed) in the first `warmupSeconds` are
 * sent but not recorded. A progress line goes to stderr every second.
 */
import { performance } from "node:perf_hooks";
import { Histogram, type HistogramSummary } from "./histogram.js";
import { codeOf, type Target } from "./targets.js";
import { OP_KINDS, type Op, type OpKind } from "./workload.js";

export interface RunSpec {
  readonly label: string;
  readonly mode: "open" | "closed";
  /** Requests per second (open loop). */
  readonly rate?: number;
  /** Workers (closed loop). */
  readonly concurrency?: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly maxInFlight?: number;
}

export interface TypeResult {
  /** Successful requests recorded. */
  readonly ok: number;
  readonly perSecond: number;
  readonly latency: HistogramSummary;
  readonly errors: Record<string, number>;
  /** Calls made per request (the user-timeline offset emulation makes 1-2). */
  readonly callsPerOp: number;
}

export interface RunResult {
  readonly label: string;
  readonly target: string;
  readonly mode: "open" | "closed";
  readonly rate?: number;
  readonly concurrency?: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Requests recorded (ok + failed) per second of the measured window. */
  readonly achievedPerSecond: number;
  readonly all: TypeResult;
  readonly byType: Record<OpKind, TypeResult>;
  /** The load generator's own cost: CPU per request and its event loop's utilization over the window. */
  readonly loadgen: { readonly cpuPercent: number; readonly cpuMsPerOp: number; readonly eventLoopUtilization: number };
  /** The measured window on the monotonic clock (process.hrtime, µs), to cut CPU profiles to it. */
  readonly windowMicros: { readonly start: number; readonly end: number };
  /** Latency histograms of the window (log-linear buckets), for later merging. */
  readonly histograms: Record<OpKind | "all", ReturnType<Histogram["toJSON"]>>;
}

export interface RunHooks {
  /** Called when the measured window starts and ends (CPU snapshots of other processes). */
  readonly onWindowStart?: () => void;
  readonly onWindowEnd?: () => void;
  /** Called every second with the progress line's figures (the soak samples memory here). */
  readonly onSecond?: (elapsedSeconds: number) => void;
  readonly quiet?: boolean;
}

class Recorder {
  readonly hist = new Histogram();
  ok = 0;
  calls = 0;
  readonly errors = new Map<string, number>();
}

export async function runLoad(target: Target, nextOp: () => Op, spec: RunSpec, hooks: RunHooks = {}): Promise<RunResult> {
  const rec = Object.fromEntries(OP_KINDS.map((k) => [k, new Recorder()])) as Record<OpKind, Recorder>;
  const second = new Histogram();
  let secondErrors = 0;
  let secondDone = 0;
  let totalErrors = 0;
  let inFlight = 0;

  const t0 = performance.now() + 20;
  const warmEnd = t0 + spec.warmupSeconds * 1000;
  const end = warmEnd + spec.seconds * 1000;
  // The measured window: CPU, event loop and the other processes' snapshots
  // (hooks) are taken when it opens and closes, so they cover what was sent in it.
  let cpu0: NodeJS.CpuUsage | undefined;
  let elu0: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  let cpu: NodeJS.CpuUsage | undefined;
  let elu: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  let hr0 = 0;
  let hr1 = 0;
  const startWindow = (): void => {
    cpu0 = process.cpuUsage();
    elu0 = performance.eventLoopUtilization();
    hr0 = Number(process.hrtime.bigint() / 1000n);
    hooks.onWindowStart?.();
  };
  const endWindow = (): void => {
    if (cpu !== undefined) return;
    cpu = process.cpuUsage(cpu0);
    elu = performance.eventLoopUtilization(elu0);
    hr1 = Number(process.hrtime.bigint() / 1000n);
    hooks.onWindowEnd?.();
  };
  const windowTimers = [setTimeout(startWindow, warmEnd - performance.now()), setTimeout(endWindow, end - performance.now())];

  const finish = (op: Op, since: number, calls: number, err: unknown): void => {
    const ms = performance.now() - since;
    secondDone++;
    if (err !== undefined) {
      secondErrors++;
      totalErrors++;
    }
    second.recordMs(ms);
    if (since < warmEnd || since >= end) return;
    const r = rec[op.kind];
    if (err === undefined) {
      r.hist.recordMs(ms);
      r.ok++;
      r.calls += calls;
    } else {
      const code = codeOf(err);
      r.errors.set(code, (r.errors.get(code) ?? 0) + 1);
    }
  };
  const send = async (op: Op, since: number): Promise<void> => {
    inFlight++;
    try {
      const calls = await target.run(op);
      finish(op, since, calls, undefined);
    } catch (err) {
      finish(op, since, 0, err ?? new Error("undefined rejection"));
    } finally {
      inFlight--;
    }
  };

  const progress = setInterval(() => {
    const now = performance.now();
    const elapsed = (now - t0) / 1000;
    if (hooks.quiet !== true) {
      const phase = now < warmEnd ? "warm-up" : "measuring";
      const p99 = second.count === 0 ? "-" : `${(second.percentileMicros(99) / 1000).toFixed(1)} ms`;
      process.stderr.write(
        `[${spec.label}] ${Math.max(0, elapsed).toFixed(0)}/${spec.warmupSeconds + spec.seconds} s ${phase}: ${secondDone} done/s, errors ${secondErrors} (total ${totalErrors}), p99 ${p99}, in flight ${inFlight}\n`,
      );
    }
    hooks.onSecond?.(elapsed);
    second.reset();
    secondErrors = 0;
    secondDone = 0;
  }, 1000);

  try {
    if (spec.mode === "open") {
      const rate = spec.rate ?? 100;
      const interval = 1000 / rate;
      const maxInFlight = spec.maxInFlight ?? 1024;
      const waiting: Array<{ op: Op; due: number }> = [];
      const running = new Set<Promise<void>>();
      const launch = (op: Op, due: number): void => {
        const p = send(op, due).finally(() => {
          running.delete(p);
          const next = waiting.shift();
          if (next !== undefined) launch(next.op, next.due);
        });
        running.add(p);
      };
      let i = 0;
      await new Promise<void>((resolve) => {
        const tick = (): void => {
          const now = performance.now();
          for (;;) {
            const due = t0 + i * interval;
            if (due > now || due >= end) break;
            i++;
            const op = nextOp();
            if (inFlight < maxInFlight) launch(op, due);
            else waiting.push({ op, due });
          }
          if (t0 + i * interval >= end) resolve();
          else setTimeout(tick, Math.max(0, Math.min(5, t0 + i * interval - performance.now())));
        };
        setTimeout(tick, Math.max(0, t0 - performance.now()));
      });
      while (waiting.length > 0 || running.size > 0) await Promise.race([...running]);
    } else {
      await new Promise((r) => setTimeout(r, Math.max(0, t0 - performance.now())));
      await Promise.all(
        Array.from({ length: spec.concurrency ?? 32 }, async () => {
          while (performance.now() < end) {
            const since = performance.now();
            await send(nextOp(), since);
          }
        }),
      );
    }
  } finally {
    clearInterval(progress);
    for (const t of windowTimers) clearTimeout(t);
  }
  endWindow();

  const seconds = spec.seconds;
  const summarize = (r: Recorder): TypeResult => ({
    ok: r.ok,
    perSecond: round(r.ok / seconds, 1),
    latency: r.hist.summary(),
    errors: Object.fromEntries(r.errors),
    callsPerOp: r.ok === 0 ? 0 : round(r.calls / r.ok, 2),
  });
  const all = new Recorder();
  for (const k of OP_KINDS) {
    all.hist.add(rec[k].hist);
    all.ok += rec[k].ok;
    all.calls += rec[k].calls;
    for (const [code, n] of rec[k].errors) all.errors.set(code, (all.errors.get(code) ?? 0) + n);
  }
  const failed = [...all.errors.values()].reduce((a, b) => a + b, 0);
  const recorded = all.ok + failed;
  const cpuMs = (cpu!.user + cpu!.system) / 1000;
  return {
    label: spec.label,
    target: target.name,
    mode: spec.mode,
    ...(spec.mode === "open" ? { rate: spec.rate ?? 100 } : { concurrency: spec.concurrency ?? 32 }),
    seconds,
    warmupSeconds: spec.warmupSeconds,
    achievedPerSecond: round(recorded / seconds, 1),
    all: summarize(all),
    byType: Object.fromEntries(OP_KINDS.map((k) => [k, summarize(rec[k])])) as Record<OpKind, TypeResult>,
    loadgen: {
      cpuPercent: round((cpuMs / (seconds * 1000)) * 100, 1),
      cpuMsPerOp: recorded === 0 ? 0 : round(cpuMs / recorded, 3),
      eventLoopUtilization: round(elu!.utilization, 3),
    },
    windowMicros: { start: hr0, end: hr1 },
    histograms: { ...(Object.fromEntries(OP_KINDS.map((k) => [k, rec[k].hist.toJSON()])) as Record<OpKind, ReturnType<Histogram["toJSON"]>>), all: all.hist.toJSON() },
  };
}

export const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
