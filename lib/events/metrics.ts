// Bus metrics, registered once per registry (a process may run the relay and
// several consumers against the same one). Labels are bounded: shard names,
// subjects from EVENTS, durable names from code, fixed result sets.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface EventMetrics {
  /** Outbox rows acknowledged by JetStream; result: stored | duplicate (already in the stream). */
  readonly relayPublished: Counter<"subject" | "result">;
  /** Unsent outbox rows on a shard whose lease this process holds. */
  readonly relayBacklog: Gauge<"shard">;
  /** From the row's insert (its create_time) to JetStream's ack, by shard. */
  readonly relayLatency: Histogram<"shard">;
  /** 1 while this process holds the shard's relay lease. */
  readonly relayLeaseHeld: Gauge<"shard">;
  /** Failed relay steps, by shard and stage (read, publish, mark, purge, backlog, other). */
  readonly relayFailures: Counter<"shard" | "stage">;
  /** Sent rows deleted after the retention. */
  readonly relayPurged: Counter<"shard">;
  /** Messages a consumer finished; result: ok | retry | dead_letter | skipped. */
  readonly consumed: Counter<"durable" | "subject" | "result">;
  readonly handlerDuration: Histogram<"durable" | "subject">;
  /** JetStream's count of events under the consumer's filter not yet delivered to any instance (num_pending). */
  readonly consumerPending: Gauge<"durable">;
  /** Events delivered to an instance and not yet acknowledged: being handled or waiting for a retry (num_ack_pending). */
  readonly consumerAckPending: Gauge<"durable">;
  /** Age of the oldest event the consumer has not finished (0 when it is caught up). Absent while unknown. */
  readonly consumerLag: Gauge<"durable">;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const HANDLER_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const byRegistry = new WeakMap<Registry, EventMetrics>();

export function eventMetrics(registry: Registry): EventMetrics {
  let m = byRegistry.get(registry);
  if (m !== undefined) return m;
  const registers = [registry];
  m = {
    relayPublished: new Counter({
      name: "chirp_relay_published_total",
      help: "Outbox rows acknowledged by JetStream, by subject and result (stored, or duplicate: already in the stream).",
      labelNames: ["subject", "result"],
      registers,
    }),
    relayBacklog: new Gauge({
      name: "chirp_relay_backlog",
      help: "Unsent outbox rows on a shard whose relay lease this process holds.",
      labelNames: ["shard"],
      registers,
    }),
    relayLatency: new Histogram({
      name: "chirp_relay_publish_latency_seconds",
      help: "Time from an outbox row's insert to JetStream's ack of its event, by shard.",
      labelNames: ["shard"],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    relayLeaseHeld: new Gauge({
      name: "chirp_relay_lease_held",
      help: "1 while this process holds the shard's outbox relay lease.",
      labelNames: ["shard"],
      registers,
    }),
    relayFailures: new Counter({
      name: "chirp_relay_failures_total",
      help: "Failed outbox relay steps, by shard and stage (read, publish, mark, purge, backlog, other).",
      labelNames: ["shard", "stage"],
      registers,
    }),
    relayPurged: new Counter({
      name: "chirp_relay_purged_total",
      help: "Sent outbox rows deleted after the retention period, by shard.",
      labelNames: ["shard"],
      registers,
    }),
    consumed: new Counter({
      name: "chirp_bus_consumed_total",
      help: "Events a durable consumer finished, by durable, subject and result (ok, retry, dead_letter, skipped).",
      labelNames: ["durable", "subject", "result"],
      registers,
    }),
    handlerDuration: new Histogram({
      name: "chirp_bus_handler_duration_seconds",
      help: "Time an event handler took, by durable and subject.",
      labelNames: ["durable", "subject"],
      buckets: HANDLER_BUCKETS,
      registers,
    }),
    // Both instances of a service report the same durable (JetStream keeps one
    // position for it): aggregate with max by (durable), not sum.
    consumerPending: new Gauge({
      name: "chirp_bus_consumer_pending",
      help: "Events under a durable consumer's filter that JetStream has not yet delivered to any instance (num_pending), polled.",
      labelNames: ["durable"],
      registers,
    }),
    consumerAckPending: new Gauge({
      name: "chirp_bus_consumer_ack_pending",
      help: "Events delivered to a durable consumer and not yet acknowledged: being handled or waiting for a retry (num_ack_pending), polled.",
      labelNames: ["durable"],
      registers,
    }),
    consumerLag: new Gauge({
      name: "chirp_bus_consumer_lag_seconds",
      help: "Age of the oldest event a durable consumer has not finished (0 when caught up), polled; absent while NATS cannot be asked.",
      labelNames: ["durable"],
      registers,
    }),
  };
  byRegistry.set(registry, m);
  return m;
}
