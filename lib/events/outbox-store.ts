// The relay's SQL on one shard's `chirp.outbox` (appendOutbox in outbox.ts
// writes the rows). Every statement runs on the shard's primary: a replica may
// not have a just-committed row yet, or may still show a row as unsent.
import type { Queryable } from "../shard/router.js";

export interface OutboxRow {
  /** AUTO_INCREMENT: the shard's publish order. */
  readonly id: string;
  /** The JetStream message id (decimal Snowflake). */
  readonly eventId: string;
  readonly userId: string;
  readonly subject: string;
  readonly payload: Buffer;
  /** The JSON object of headers, as stored (may be null). */
  readonly headers: string | null;
  /** Row age when read, on the database's clock (no skew with ours). */
  readonly ageMs: number;
}

interface RawRow {
  id: string;
  event_id: string;
  user_id: string;
  subject: string;
  payload: Buffer;
  headers: string | null;
  age_us: string | number | null;
}

/**
 * The oldest unsent rows, in id order (index outbox_unsent). A row of a
 * transaction still open is not visible yet, even if its id is lower than one
 * returned: it is read on a later round, never skipped, because this reads
 * "unsent" rather than "after the last id".
 */
export async function readUnsent(db: Queryable, limit: number): Promise<OutboxRow[]> {
  const rows = await db.query<RawRow>(
    "SELECT id, event_id, user_id, subject, payload, headers, " +
      "TIMESTAMPDIFF(MICROSECOND, create_time, UTC_TIMESTAMP(6)) AS age_us " +
      `FROM chirp.outbox WHERE sent_time IS NULL ORDER BY id LIMIT ${intLiteral(limit)}`,
  );
  return rows.map((r) => ({
    id: String(r.id),
    eventId: String(r.event_id),
    userId: String(r.user_id),
    subject: r.subject,
    payload: r.payload,
    headers: r.headers,
    ageMs: r.age_us === null ? 0 : Math.max(0, Number(r.age_us) / 1000),
  }));
}

/** Marks rows sent by their outbox ids (the rows a relay read). */
export function markSent(db: Queryable, ids: readonly string[]): Promise<number> {
  return markSentWhere(db, "id", ids);
}

/**
 * Marks rows sent by their event ids (unique key outbox_event): the rows a
 * relay was handed at commit and never read, so it does not know their ids.
 */
export function markSentByEvent(db: Queryable, eventIds: readonly string[]): Promise<number> {
  return markSentWhere(db, "event_id", eventIds);
}

/**
 * The list is padded to a power of two (repeating the last value) so that a
 * handful of statement shapes is prepared, not one per batch size.
 */
async function markSentWhere(db: Queryable, column: "id" | "event_id", values: readonly string[]): Promise<number> {
  let affected = 0;
  for (let i = 0; i < values.length; i += MAX_IN) {
    const chunk = values.slice(i, i + MAX_IN);
    const size = 2 ** Math.ceil(Math.log2(chunk.length));
    const params = [...chunk, ...Array<string>(size - chunk.length).fill(chunk[chunk.length - 1]!)];
    const result = await db.execute(
      `UPDATE chirp.outbox SET sent_time = UTC_TIMESTAMP(6) WHERE sent_time IS NULL AND ${column} IN (${params.map(() => "?").join(", ")})`,
      params,
    );
    affected += result.affectedRows;
  }
  return affected;
}

/** Deletes up to `limit` rows sent more than `retentionMs` ago; returns how many went. */
export async function purgeSent(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  const result = await db.execute(
    "DELETE FROM chirp.outbox WHERE sent_time < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND " +
      `ORDER BY sent_time LIMIT ${intLiteral(limit)}`,
    [String(Math.round(retentionMs * 1000))],
  );
  return result.affectedRows;
}

/** Unsent rows on the shard (for the backlog gauge). */
export async function countUnsent(db: Queryable): Promise<number> {
  const rows = await db.query<{ n: string | number }>("SELECT COUNT(*) AS n FROM chirp.outbox WHERE sent_time IS NULL");
  return Number(rows[0]?.n ?? 0);
}

const MAX_IN = 1024;

/** LIMIT takes a literal here (a bound LIMIT is refused by some MySQL 8 versions); only validated integers get here. */
function intLiteral(n: number): string {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError("limit must be a positive integer");
  return String(n);
}
