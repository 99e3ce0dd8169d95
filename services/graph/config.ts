import { EnvReader, type Env } from "../../lib/config.js";

/** The graph service's own settings (CHIRP_GRAPH_*), read once at start. */
export interface GraphConfig {
  /** CHIRP_GRAPH_SWEEP_INTERVAL_MS: how often the repair sweep looks for edges whose followee side is unconfirmed; 0 turns it off. */
  readonly sweepIntervalMs: number;
  /** CHIRP_GRAPH_SWEEP_GRACE_MS: how old a pending edge must be before the sweep takes it (the request that made it is usually finishing it). */
  readonly sweepGraceMs: number;
  /** CHIRP_GRAPH_SWEEP_BATCH: pending edges per shard per sweep. */
  readonly sweepBatch: number;
}

export function loadGraphConfig(env: Env): GraphConfig {
  const read = new EnvReader(env);
  const config: GraphConfig = {
    sweepIntervalMs: read.int("CHIRP_GRAPH_SWEEP_INTERVAL_MS", 30_000, 0, 86_400_000),
    sweepGraceMs: read.int("CHIRP_GRAPH_SWEEP_GRACE_MS", 10_000, 0, 86_400_000),
    sweepBatch: read.int("CHIRP_GRAPH_SWEEP_BATCH", 500, 1, 1000),
  };
  read.done();
  return config;
}
