// Waking the outbox relay when rows are committed, instead of having it poll
// every shard many times a second. appendOutbox() asks the transaction to
// announce its rows once it commits:
//
//   - a relay in this process that holds the shard's lease takes the rows
//     themselves (takeCommittedRows) and publishes them without reading them
//     back: no SELECT, and no message over NATS to wake it;
//   - otherwise the process's announcer publishes a core NATS message (not
//     stored: it is a nudge, not an event) on `chirp_relay_wake.<keyspace>.<shard>`,
//     and the relay holding that shard's lease, in whichever process, reads
//     the shard at once.
//
// Either way the row is in MySQL, unsent, until the relay marks it: a relay
// that dies with rows in hand leaves them for its successor, and polling stays
// as the safety net (CHIRP_RELAY_POLL_MS) for a nudge lost while NATS was away.
import type { EventBus } from "./bus.js";

/** An outbox row as its transaction wrote it: what the relay publishes. */
export interface CommittedOutboxRow {
  /** The JetStream message id (decimal Snowflake). */
  readonly eventId: string;
  readonly userId: string;
  readonly subject: string;
  readonly payload: Uint8Array;
  /** The JSON object of headers, as stored (null: none). */
  readonly headers: string | null;
  /** performance.now() when its transaction committed. */
  readonly committedAt: number;
}

type Listener = (keyspace: string, shard: string) => void;
/** True when it took the rows (this process's relay holds the shard's lease). */
type Taker = (keyspace: string, shard: string, rows: readonly CommittedOutboxRow[]) => boolean;
const listeners = new Set<Listener>();
const takers = new Set<Taker>();

/** Called by appendOutbox's transaction after it commits. */
export function outboxCommitted(keyspace: string, shard: string, rows: readonly CommittedOutboxRow[]): void {
  if (rows.length > 0) for (const t of takers) if (t(keyspace, shard, rows)) return;
  for (const l of listeners) l(keyspace, shard);
}

/** A relay in this process offers to take committed rows (relay.ts). Returns a function that withdraws the offer. */
export function takeCommittedRows(taker: Taker): () => void {
  takers.add(taker);
  return () => {
    takers.delete(taker);
  };
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
