// /metrics with `--processes N` (workers.ts): a scrape reaches whichever
// worker the primary hands the connection to, so each worker answers for all
// of them. The worker asks the primary over IPC; the primary gathers every
// worker's registry (prom-client's AggregatorRegistry: counters, histograms
// and gauges summed across workers) and sends the text back. Without workers
// nothing changes: a registry answers for itself.
import cluster from "node:cluster";
import { AggregatorRegistry, type Registry } from "prom-client";

const REQUEST = "chirp:metrics-request";
const REPLY = "chirp:metrics-reply";

interface Reply {
  readonly type: typeof REPLY;
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
}

let clusterText: (() => Promise<string>) | undefined;

/** The exposition text a /metrics endpoint serves: the whole cluster's in a worker, else the registry's own. */
export function metricsText(registry: Registry): Promise<string> {
  return clusterText === undefined ? registry.metrics() : clusterText();
}

/** In a worker: offers `registry` to the primary's aggregation, and answers scrapes with every worker's. */
export function shareWorkerMetrics(registry: Registry): void {
  if (!cluster.isWorker) return;
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one adds the worker's listener for the primary's requests.
  new AggregatorRegistry();
  let next = 0;
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  process.on("message", (m: unknown) => {
    const reply = m as Partial<Reply>;
    if (reply?.type !== REPLY || reply.id === undefined) return;
    const p = pending.get(reply.id);
    if (p === undefined) return;
    pending.delete(reply.id);
    if (reply.error !== undefined || reply.text === undefined) p.reject(new Error(reply.error ?? "no metrics"));
    else p.resolve(reply.text);
  });
  clusterText = () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      process.send?.({ type: REQUEST, id });
    });
}

/** In the primary: answers the workers' requests for the whole cluster's metrics. */
export function aggregateWorkerMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on("message", (worker, m: unknown) => {
    const request = m as { type?: string; id?: number };
    if (request?.type !== REQUEST || request.id === undefined) return;
    const id = request.id;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: REPLY, id, text } satisfies Reply),
      (err: unknown) => worker.isConnected() && worker.send({ type: REPLY, id, error: (err as Error).message } satisfies Reply),
    );
  });
}
