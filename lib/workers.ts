// Several identical processes behind the same ports (`--processes N`): the
// primary forks N workers with node:cluster, each runs the same targets on
// the same gRPC, metrics and gateway ports, and the primary hands incoming
// connections to them in turn. A single Node process uses one core; this is
// how one machine's cores serve one deployment. Everything a worker runs in
// the background is already safe with several instances (outbox relay
// leases, durable consumers shared by instances, claimed sweeps, a snowflake
// node id per process).
//
// /metrics is answered by whichever worker takes the connection, for all of
// them (worker-metrics.ts: the primary sums every worker's series). A
// connection the primary hands out in the moment a worker dies, before it has
// seen the exit, is reset (as behind any balancer before its health check
// notices).
import cluster, { type Worker } from "node:cluster";
import { once } from "node:events";
import { ConfigError, EnvReader, type Env } from "./config.js";
import type { Logger } from "./logger.js";
import type { ReadyMessage } from "./service-main.js";
import { onShutdownSignal } from "./shutdown.js";
import { aggregateWorkerMetrics } from "./worker-metrics.js";

const MAX_PROCESSES = 64;

/**
 * `--processes N` or `--processes=N` in `argv`, else the environment's.
 *
 * CHIRP_PROCESSES: how many processes `services/main.ts` runs when no
 * `--processes` is given, each running the same targets behind the same ports.
 */
export function processesArgument(argv: readonly string[], env: Env): number {
  let raw: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--processes") raw = argv[i + 1];
    else if (arg.startsWith("--processes=")) raw = arg.slice("--processes=".length);
  }
  if (raw === undefined) {
    const read = new EnvReader(env);
    const n = read.int("CHIRP_PROCESSES", 1, 1, MAX_PROCESSES);
    read.done();
    return n;
  }
  if (raw === "") return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PROCESSES) {
    throw new ConfigError([`--processes: a whole number from 1 to ${MAX_PROCESSES}, got ${JSON.stringify(raw)}`]);
  }
  return n;
}

/** Whether this process is a worker forked by runWorkers (it then runs the targets itself). */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/**
 * The primary's part: forks `n` workers (the same script and arguments),
 * reports ready once every one is (the first one's ports, and every pid),
 * replaces a worker that dies, and on SIGTERM/SIGINT stops them all.
 */
export async function runWorkers(n: number, log: Logger): Promise<void> {
  let stopping = false;
  aggregateWorkerMetrics();
  const fork = (): { worker: Worker; ready: Promise<ReadyMessage> } => {
    const worker = cluster.fork();
    const ready = new Promise<ReadyMessage>((resolve, reject) => {
      const onMessage = (m: unknown): void => {
        if (typeof m === "object" && m !== null && (m as { type?: unknown }).type === "ready") {
          worker.off("message", onMessage);
          resolve(m as ReadyMessage);
        }
      };
      worker.on("message", onMessage);
      worker.once("exit", (code, signal) => reject(new Error(`worker ${worker.process.pid} exited before it was ready (${signal ?? `exit code ${code}`})`)));
    });
    worker.once("exit", (code, signal) => {
      if (stopping) return;
      log.error({ pid: worker.process.pid, code, signal }, "worker exited; starting another");
      workers.delete(worker);
      const next = fork();
      workers.add(next.worker);
      next.ready.catch((err: unknown) => {
        if (!stopping) log.error({ err }, "replacement worker failed to start");
      });
    });
    return { worker, ready };
  };
  const started = Array.from({ length: n }, fork);
  const workers = new Set(started.map((s) => s.worker));
  const readies = await Promise.all(started.map((s) => s.ready));
  const first = readies[0]!;
  log.info({ processes: n, pids: started.map((s) => s.worker.process.pid) }, "workers serving");
  process.send?.({ ...first, processes: n, pids: started.map((s) => s.worker.process.pid) });
  onShutdownSignal(log, async () => {
    stopping = true;
    await Promise.all(
      [...workers].map(async (w) => {
        if (w.isDead()) return;
        const exited = once(w, "exit");
        w.process.kill("SIGTERM");
        await exited;
      }),
    );
  });
}
