/**
 * The services of the mesh and where they listen by default. One table, so the
 * launcher, the gateway and the docs agree on names and ports.
 */
export const SERVICE_NAMES = ["user", "graph", "tweet", "timeline", "search", "media", "notification"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export const DEFAULT_PORTS: Readonly<Record<ServiceName, { grpc: number; metrics: number }>> = {
  user: { grpc: 50051, metrics: 9101 },
  graph: { grpc: 50052, metrics: 9102 },
  tweet: { grpc: 50053, metrics: 9103 },
  timeline: { grpc: 50054, metrics: 9104 },
  search: { grpc: 50055, metrics: 9105 },
  media: { grpc: 50056, metrics: 9106 },
  notification: { grpc: 50057, metrics: 9107 },
};

export const DEFAULT_GATEWAY_PORT = 8080;

/** The metrics port of a gateway process alone (the mesh); public port 8080 serves no /metrics by default. */
export const DEFAULT_GATEWAY_METRICS_PORT = 9108;

/** The gRPC and metrics ports of one process hosting several services (`--target all`). */
export const MULTI_SERVICE_PORTS = { grpc: 50050, metrics: 9100 } as const;

/** Environment variable names, derived in one place: CHIRP_USER_GRPC_PORT, CHIRP_USER_ADDR, ... */
export const envName = {
  grpcPort: (s: ServiceName) => `CHIRP_${s.toUpperCase()}_GRPC_PORT`,
  metricsPort: (s: ServiceName) => `CHIRP_${s.toUpperCase()}_METRICS_PORT`,
  /** Where callers reach a service: "host:port" or several, comma-separated, for round-robin. */
  address: (s: ServiceName) => `CHIRP_${s.toUpperCase()}_ADDR`,
};
