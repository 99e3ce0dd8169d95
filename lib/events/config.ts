// What the event plumbing reads from the environment, once: where NATS is
// (NATS_URL, shared with the topology watch), the event stream's limits
// (CHIRP_EVENTS_*) and the outbox relay's knobs (CHIRP_RELAY_*).
import { ConfigError, EnvReader, type Env } from "../config.js";
import { NatsUrlError, parseNatsUrl } from "./nats-url.js";

export interface BusConfig {
  /** NATS_URL (see shard/infra-env.ts): one URL or a comma-separated list; undefined: no bus (events stay in the outbox). */
  readonly natsUrl: string | undefined;
  /** CHIRP_EVENTS_MAX_AGE_MS: how long the stream keeps an event (consumers further behind lose it). */
  readonly maxAgeMs: number;
  /** CHIRP_EVENTS_DUPLICATE_WINDOW_MS: how long a message id is remembered for de-duplication. */
  readonly duplicateWindowMs: number;
  /** CHIRP_EVENTS_MAX_BYTES: stream size cap, oldest events dropped beyond it; -1: bounded by age only. */
  readonly maxBytes: number;
  /** CHIRP_EVENTS_MAX_MSG_SIZE: largest event payload the stream accepts. */
  readonly maxMsgSize: number;
  /**
   * CHIRP_EVENTS_ACK_WAIT_MS: how long a durable consumer's delivery may go
   * unacknowledged before JetStream hands it out again (a consumer process
   * that died mid-event); a handler still working extends it.
   */
  readonly ackWaitMs: number;
}

export const BUS_DEFAULTS = {
  maxAgeMs: 7 * 24 * 3_600_000,
  duplicateWindowMs: 120_000,
  maxBytes: -1,
  maxMsgSize: 1024 * 1024,
  ackWaitMs: 30_000,
} as const;

export interface RelayConfig {
  /** CHIRP_RELAY_ENABLED: whether this process runs the outbox relay, which publishes committed events to NATS. */
  readonly enabled: boolean;
  /** CHIRP_RELAY_BATCH_SIZE: rows read, published and marked sent per round. */
  readonly batchSize: number;
  /**
   * CHIRP_RELAY_POLL_MS: longest pause after a round that found less than a
   * full batch. A commit of outbox rows wakes the relay at once
   * (lib/events/outbox-wake.ts), and every shard is read when the connection to NATS
   * comes back (nudges sent meanwhile were lost); the poll is the slow safety
   * net for a writer that died between its commit and its nudge.
   */
  readonly pollMs: number;
  /** CHIRP_RELAY_PUBLISH_TIMEOUT_MS: longest wait for a JetStream ack. */
  readonly publishTimeoutMs: number;
  /**
   * CHIRP_RELAY_MARK_DELAY_MS: how long rows handed to the relay at commit
   * (outbox-wake.ts) may stay published but not yet marked sent, so that one
   * UPDATE marks the rows of many commits (0: each round marks its own). A
   * relay that stops marks them first; one that dies leaves them to be
   * published again by its successor, and JetStream drops the copies.
   */
  readonly markDelayMs: number;
  /** CHIRP_RELAY_RETRY_MIN_MS: the first pause of one shard's relay after a failed round; it doubles with each failure. */
  readonly retryMinMs: number;
  /** CHIRP_RELAY_RETRY_MAX_MS: the longest pause of one shard's relay after failed rounds. */
  readonly retryMaxMs: number;
  /** CHIRP_RELAY_LEASE_TTL_MS: a shard's lease lapses this long after its last renewal (the KV bucket's max age). */
  readonly leaseTtlMs: number;
  /** CHIRP_RELAY_LEASE_RENEW_MS: how often the holder renews. */
  readonly leaseRenewMs: number;
  /** CHIRP_RELAY_LEASE_CLAIM_MS: how often a relay without the lease tries to take it. */
  readonly leaseClaimMs: number;
  /** CHIRP_RELAY_RETENTION_MS: sent rows older than this are deleted. */
  readonly retentionMs: number;
  /** CHIRP_RELAY_PURGE_INTERVAL_MS: how often sent rows past their retention are deleted. */
  readonly purgeIntervalMs: number;
  /** CHIRP_RELAY_PURGE_BATCH: rows per DELETE of that purge. */
  readonly purgeBatch: number;
  /** CHIRP_RELAY_BACKLOG_INTERVAL_MS: how often the unsent rows of a busy shard are counted for the gauge. */
  readonly backlogIntervalMs: number;
}

export const RELAY_DEFAULTS: RelayConfig = {
  enabled: true,
  batchSize: 256,
  pollMs: 5000,
  publishTimeoutMs: 5000,
  markDelayMs: 200,
  retryMinMs: 100,
  retryMaxMs: 5000,
  leaseTtlMs: 10_000,
  leaseRenewMs: 2000,
  leaseClaimMs: 500,
  retentionMs: 24 * 3_600_000,
  purgeIntervalMs: 60_000,
  purgeBatch: 1000,
  backlogIntervalMs: 5000,
};

/** NATS_URL and CHIRP_EVENTS_*; one ConfigError lists every problem. */
export function loadBusConfig(env: Env): BusConfig {
  const read = new EnvReader(env);
  const problems: string[] = [];
  const natsUrl = read.optional("NATS_URL");
  if (natsUrl !== undefined) {
    try {
      parseNatsUrl(natsUrl);
    } catch (err) {
      if (!(err instanceof NatsUrlError)) throw err;
      problems.push(err.message);
    }
  }
  const config: BusConfig = {
    natsUrl,
    maxAgeMs: read.int("CHIRP_EVENTS_MAX_AGE_MS", BUS_DEFAULTS.maxAgeMs, 60_000, 365 * 24 * 3_600_000),
    duplicateWindowMs: read.int("CHIRP_EVENTS_DUPLICATE_WINDOW_MS", BUS_DEFAULTS.duplicateWindowMs, 1000, 24 * 3_600_000),
    maxBytes: read.int("CHIRP_EVENTS_MAX_BYTES", BUS_DEFAULTS.maxBytes, -1),
    maxMsgSize: read.int("CHIRP_EVENTS_MAX_MSG_SIZE", BUS_DEFAULTS.maxMsgSize, 1024, 64 * 1024 * 1024),
    ackWaitMs: read.int("CHIRP_EVENTS_ACK_WAIT_MS", BUS_DEFAULTS.ackWaitMs, 1000, 3_600_000),
  };
  if (config.duplicateWindowMs > config.maxAgeMs) {
    problems.push("CHIRP_EVENTS_DUPLICATE_WINDOW_MS must not exceed CHIRP_EVENTS_MAX_AGE_MS");
  }
  if (config.maxBytes === 0) problems.push("CHIRP_EVENTS_MAX_BYTES must be -1 (no cap) or positive");
  finish(read, problems);
  return config;
}

/** CHIRP_RELAY_*; one ConfigError lists every problem. */
export function loadRelayConfig(env: Env): RelayConfig {
  const read = new EnvReader(env);
  const d = RELAY_DEFAULTS;
  const config: RelayConfig = {
    enabled: read.oneOf("CHIRP_RELAY_ENABLED", ["true", "false"], "true") === "true",
    batchSize: read.int("CHIRP_RELAY_BATCH_SIZE", d.batchSize, 1, 4096),
    pollMs: read.int("CHIRP_RELAY_POLL_MS", d.pollMs, 1, 60_000),
    publishTimeoutMs: read.int("CHIRP_RELAY_PUBLISH_TIMEOUT_MS", d.publishTimeoutMs, 100, 120_000),
    markDelayMs: read.int("CHIRP_RELAY_MARK_DELAY_MS", d.markDelayMs, 0, 60_000),
    retryMinMs: read.int("CHIRP_RELAY_RETRY_MIN_MS", d.retryMinMs, 1, 600_000),
    retryMaxMs: read.int("CHIRP_RELAY_RETRY_MAX_MS", d.retryMaxMs, 1, 600_000),
    leaseTtlMs: read.int("CHIRP_RELAY_LEASE_TTL_MS", d.leaseTtlMs, 1000, 600_000),
    leaseRenewMs: read.int("CHIRP_RELAY_LEASE_RENEW_MS", d.leaseRenewMs, 100, 300_000),
    leaseClaimMs: read.int("CHIRP_RELAY_LEASE_CLAIM_MS", d.leaseClaimMs, 50, 300_000),
    retentionMs: read.int("CHIRP_RELAY_RETENTION_MS", d.retentionMs, 0, 365 * 24 * 3_600_000),
    purgeIntervalMs: read.int("CHIRP_RELAY_PURGE_INTERVAL_MS", d.purgeIntervalMs, 100, 24 * 3_600_000),
    purgeBatch: read.int("CHIRP_RELAY_PURGE_BATCH", d.purgeBatch, 1, 100_000),
    backlogIntervalMs: read.int("CHIRP_RELAY_BACKLOG_INTERVAL_MS", d.backlogIntervalMs, 100, 3_600_000),
  };
  finish(read, relayConfigProblems(config));
  return config;
}

/** Cross-field rules, also applied to configs built in code (tests). */
export function relayConfigProblems(c: RelayConfig): string[] {
  const problems: string[] = [];
  if (c.retryMinMs > c.retryMaxMs) problems.push("CHIRP_RELAY_RETRY_MIN_MS must not exceed CHIRP_RELAY_RETRY_MAX_MS");
  // Two renewals may fail before the holder stops publishing (see lease.ts).
  if (c.leaseRenewMs * 3 > c.leaseTtlMs) problems.push("CHIRP_RELAY_LEASE_RENEW_MS must be at most a third of CHIRP_RELAY_LEASE_TTL_MS");
  return problems;
}

function finish(read: EnvReader, problems: string[]): void {
  read.done(problems);
}

