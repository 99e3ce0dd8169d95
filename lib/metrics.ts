import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { metricsText } from "./worker-metrics.js";

/**
 * Process-wide Prometheus registry, `chirp_` prefixed. Labels are bounded sets
 * (service, method, code): never a user id or a tweet id.
 */
export interface Metrics {
  readonly registry: Registry;
  /**
   * Who observes through this view: the `component` label of the RPC
   * metrics. A process running several components (`--target all`) shares
   * one registry between views (componentMetrics), so the gateway's calls
   * and the tweet service's calls of the same method stay apart.
   */
  readonly component: string;
  readonly rpcServerDuration: Histogram<RpcLabel>;
  readonly rpcClientDuration: Histogram<RpcLabel>;
  readonly rpcServerInFlight: Gauge<"service" | "method" | "component">;
  /** One statement through the shard router; role is the member that served it (primary or replica). */
  readonly dbQueryDuration: Histogram<"shard" | "role" | "code">;
  /** Lag as the router sees it: last measurement plus its age. Absent while unknown. */
  readonly dbReplicaLag: Gauge<"replica_set" | "member">;
  readonly dbPoolWaiting: Gauge<"replica_set" | "member">;
  readonly dbPoolInUse: Gauge<"replica_set" | "member">;
  /** Statements re-run on a new primary after a failover (result: retried, gave_up). */
  readonly dbFailoverRetries: Counter<"replica_set" | "result">;
  readonly dbTopologyEpoch: Gauge;
}

type RpcLabel = "service" | "method" | "code" | "component";

const RPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const DB_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createMetrics(component: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry, prefix: "chirp_" });
  return {
    registry,
    component,
    rpcServerDuration: new Histogram({
      name: "chirp_rpc_server_duration_seconds",
      help: "Time to handle an RPC, by service, method and result code.",
      labelNames: ["service", "method", "code", "component"],
      buckets: RPC_BUCKETS,
      registers: [registry],
    }),
    rpcClientDuration: new Histogram({
      name: "chirp_rpc_client_duration_seconds",
      help: "Time an outgoing RPC took as seen by the caller, by service, method and result code.",
      labelNames: ["service", "method", "code", "component"],
      buckets: RPC_BUCKETS,
      registers: [registry],
    }),
    rpcServerInFlight: new Gauge({
      name: "chirp_rpc_server_in_flight",
      help: "RPCs being handled right now, by service and method.",
      labelNames: ["service", "method", "component"],
      registers: [registry],
    }),
    dbQueryDuration: new Histogram({
      name: "chirp_db_query_duration_seconds",
      help: "Time of one statement through the shard router (pool wait included), by shard, serving role and result code.",
      labelNames: ["shard", "role", "code"],
      buckets: DB_BUCKETS,
      registers: [registry],
    }),
    dbReplicaLag: new Gauge({
      name: "chirp_db_replica_lag_seconds",
      help: "Replica lag as the shard router sees it (last heartbeat measurement plus its age), by replica set and member.",
      labelNames: ["replica_set", "member"],
      registers: [registry],
    }),
    dbPoolWaiting: new Gauge({
      name: "chirp_db_pool_waiting",
      help: "Statements waiting for a pooled connection, by replica set and member.",
      labelNames: ["replica_set", "member"],
      registers: [registry],
    }),
    dbPoolInUse: new Gauge({
      name: "chirp_db_pool_in_use",
      help: "Pooled connections in use, by replica set and member.",
      labelNames: ["replica_set", "member"],
      registers: [registry],
    }),
    dbFailoverRetries: new Counter({
      name: "chirp_db_failover_retries_total",
      help: "Writes that failed before reaching a primary and waited for a topology change: retried on the new primary, or gave up.",
      labelNames: ["replica_set", "result"],
      registers: [registry],
    }),
    dbTopologyEpoch: new Gauge({
      name: "chirp_db_topology_epoch",
      help: "Epoch of the live topology the shard router follows.",
      registers: [registry],
    }),
  };
}

/**
 * The same registry and instruments observed as another component: one
 * process hosting several (the gateway and every service) keeps one
 * registry, each component's RPCs labelled with its own name.
 */
export function componentMetrics(metrics: Metrics, component: string): Metrics {
  return { ...metrics, component };
}

/**
 * Adds one per item to `counter` under `label` = the item's result, with one
 * inc() per distinct result: prom-client hashes the label set on every inc(),
 * and a read of a page's ten entries would otherwise pay that ten times.
 */
export function countResults<L extends string>(counter: Counter<L> | undefined, label: L, results: readonly string[]): void {
  if (counter === undefined || results.length === 0) return;
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r, (counts.get(r) ?? 0) + 1);
  for (const [result, n] of counts) counter.inc({ [label]: result } as Partial<Record<L, string>>, n);
}

/**
 * A metric's labelled children, each made once per label values and kept:
 * prom-client hashes the label object on every inc() or observe() otherwise.
 * `key` names the values (joined, say); `labels` makes them the first time.
 */
export function labelledChildren<C>(child: (labels: Record<string, string>) => C): (key: string, labels: () => Record<string, string>) => C {
  const made = new Map<string, C>();
  return (key, labels) => {
    let c = made.get(key);
    if (c === undefined) made.set(key, (c = child(labels())));
    return c;
  };
}

/** Serves GET /metrics (and /healthz) on its own port, for services whose main port speaks only gRPC. */
export async function serveMetrics(
  registry: Registry,
  port: number,
  host = "127.0.0.1",
): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics") {
      metricsText(registry)
        .then((body) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(500).end();
        });
      return;
    }
    if (req.method === "GET" && req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
