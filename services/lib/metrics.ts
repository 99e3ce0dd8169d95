import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Process-wide Prometheus registry, `chirp_` prefixed. Labels are bounded sets
 * (service, method, code): never a user id or a tweet id.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly rpcServerDuration: Histogram<"service" | "method" | "code">;
  readonly rpcClientDuration: Histogram<"service" | "method" | "code">;
  readonly rpcServerInFlight: Gauge<"service" | "method">;
}

const RPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createMetrics(component: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry, prefix: "chirp_" });
  return {
    registry,
    rpcServerDuration: new Histogram({
      name: "chirp_rpc_server_duration_seconds",
      help: "Time to handle an RPC, by service, method and result code.",
      labelNames: ["service", "method", "code"],
      buckets: RPC_BUCKETS,
      registers: [registry],
    }),
    rpcClientDuration: new Histogram({
      name: "chirp_rpc_client_duration_seconds",
      help: "Time an outgoing RPC took as seen by the caller, by service, method and result code.",
      labelNames: ["service", "method", "code"],
      buckets: RPC_BUCKETS,
      registers: [registry],
    }),
    rpcServerInFlight: new Gauge({
      name: "chirp_rpc_server_in_flight",
      help: "RPCs being handled right now, by service and method.",
      labelNames: ["service", "method"],
      registers: [registry],
    }),
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
      registry
        .metrics()
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
