// Waking the outbox relay when rows are committed, instead of having it poll
// every shard many times a second. appendOutbox() asks the transaction to
// announce its shard once it commits; the process's announcer publishes a
// core NATS message (not stored: it is a nudge, not an event) on
// `chirp_relay_wake.<keyspace>.<shard>`; the relay holding that shard's lease,
// in whichever process, reads the shard at once. Polling stays as the safety
// net (CHIRP_RELAY_POLL_MS) for a nudge lost while NATS was away.
import type { EventBus } from "./bus.js";

type Listener = (keyspace: string, shard: string) => void;
const listeners = new Set<Listener>();

/** Called by appendOutbox's transaction after it commits. */
export function outboxCommitted(keyspace: string, shard: string): void {
  for (const l of listeners) l(keyspace, shard);
}

/** Subject of the nudge for a shard's relay. */
export function relayWakeSubject(keyspace: string, shard: string): string {
  return `chirp_relay_wake.${keyspace}.${shard}`;
}

/** The shard a nudge names, or undefined for a subject of another keyspace. */
export function shardOfWake(subject: string, keyspace: string): string | undefined {
  const prefix = `chirp_relay_wake.${keyspace}.`;
  return subject.startsWith(prefix) ? subject.slice(prefix.length) : undefined;
}

/**
 * Publishes a nudge for every shard this process commits outbox rows on, at
 * most once per shard per turn of the event loop. Returns a function that
 * stops it.
 */
export function announceOutboxCommits(bus: EventBus): () => void {
  const pending = new Set<string>();
  const flush = (): void => {
    const nc = bus.current()?.nc;
    for (const subject of pending) nc?.publish(subject);
    pending.clear();
  };
  const listener: Listener = (keyspace, shard) => {
    if (pending.size === 0) setImmediate(flush);
    pending.add(relayWakeSubject(keyspace, shard));
  };
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}
