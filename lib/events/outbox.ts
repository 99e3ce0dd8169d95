import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { IdGenerator } from "../ids.js";
import { executeOrDefer, type Queryable, type SqlValue, type Transaction } from "../shard/router.js";
import { activeTraceHeaders } from "../tracing/tracing.js";
import { outboxCommitted, type CommittedOutboxRow } from "./outbox-wake.js";
import type { EventType } from "./subjects.js";
import { encodeMessage } from "../proto-codec.js";

export interface OutboxEntry<D extends DescMessage> {
  readonly type: EventType<D>;
  readonly message: MessageShape<D>;
  /** The user whose change this announces; the row lives on that user's shard. */
  readonly userId: bigint | string;
  /** Travels as the `x-request-id` header of the published message. */
  readonly requestId?: string | undefined;
}

/**
 * Writes a change's event into the transaction that makes the change. A store
 * method that writes takes one and calls it with its own transaction, so the
 * event commits or rolls back with the change; the service's events.ts builds
 * it (the event message, appended with appendOutbox). The store then holds only
 * SQL and rows: the event protos and the request's details (its request id)
 * stay with the service.
 */
export type Announce<T> = (tx: Queryable, change: T) => Promise<unknown>;

/**
 * Records an event in the same transaction as the change it announces (the
 * transactional outbox). The relay publishes it to JetStream later with
 * `event_id` as the message id, so a crash, a NATS outage or a second relay
 * can delay an event or repeat an attempt, but never lose or duplicate it.
 * Returns the event id.
 */
export async function appendOutbox<D extends DescMessage>(
  tx: Queryable,
  ids: IdGenerator,
  entry: OutboxEntry<D>,
): Promise<bigint> {
  const userId = BigInt(entry.userId);
  const eventId = ids.next();
  // The trace context of the request writing the row (traceparent, tracestate)
  // rides with it: the relay publishes it as NATS headers, and consumers continue the trace.
  const traced = activeTraceHeaders();
  const headers =
    entry.requestId === undefined && traced === undefined
      ? null
      : JSON.stringify({ ...(entry.requestId === undefined ? {} : { "x-request-id": entry.requestId }), ...traced });
  const payload = encodeMessage(entry.type.schema, entry.message);
  await executeOrDefer(tx, "INSERT INTO chirp.outbox (event_id, user_id, subject, payload, headers) VALUES (?, ?, ?, ?, ?)", [
    eventId,
    userId,
    entry.type.subject,
    payload,
    headers,
  ]);
  // Inside a router transaction: hand the row to the shard's relay once it is committed (outbox-wake.ts).
  if (isTransaction(tx)) {
    const row = { eventId: String(eventId), userId: String(userId), subject: entry.type.subject, payload, headers };
    tx.afterCommit(() => outboxCommitted(tx.keyspace, tx.shard.name, [{ ...row, committedAt: performance.now() }]));
  }
  return eventId;
}

/**
 * appendOutbox for several events of one transaction, in one multi-row INSERT
 * (one statement, one relay wake-up): each is still its own row and its own
 * message, with its own event id. The rows must all live on the
 * transaction's shard. Returns the event ids, in order.
 */
export async function appendOutboxMany<D extends DescMessage>(
  tx: Queryable,
  ids: IdGenerator,
  entries: ReadonlyArray<OutboxEntry<D>>,
): Promise<bigint[]> {
  if (entries.length === 0) return [];
  const traced = activeTraceHeaders();
  const eventIds: bigint[] = [];
  const params: SqlValue[] = [];
  const rows: Array<Omit<CommittedOutboxRow, "committedAt">> = [];
  for (const entry of entries) {
    const eventId = ids.next();
    eventIds.push(eventId);
    const headers =
      entry.requestId === undefined && traced === undefined
        ? null
        : JSON.stringify({ ...(entry.requestId === undefined ? {} : { "x-request-id": entry.requestId }), ...traced });
    const userId = BigInt(entry.userId);
    const payload = encodeMessage(entry.type.schema, entry.message);
    params.push(eventId, userId, entry.type.subject, payload, headers);
    rows.push({ eventId: String(eventId), userId: String(userId), subject: entry.type.subject, payload, headers });
  }
  await executeOrDefer(tx, `INSERT INTO chirp.outbox (event_id, user_id, subject, payload, headers) VALUES ${entries.map(() => "(?, ?, ?, ?, ?)").join(", ")}`, params);
  if (isTransaction(tx)) {
    tx.afterCommit(() => {
      const committedAt = performance.now();
      outboxCommitted(
        tx.keyspace,
        tx.shard.name,
        rows.map((r) => ({ ...r, committedAt })),
      );
    });
  }
  return eventIds;
}

function isTransaction(q: Queryable): q is Transaction {
  return typeof (q as Partial<Transaction>).afterCommit === "function";
}
