// All of the notification service's SQL. notifications and notification_reads
// live on the recipient's shard; notification_sources on the tweet author's.
// Migration 0013 describes the columns.
import { createHash } from "node:crypto";
import { keyBatches } from "../../lib/key-batches.js";
import { keepTraceContext } from "../../lib/tracing/tracing.js";
import type { ShardRef, ShardRouter, SqlValue, Transaction } from "../../lib/shard/router.js";
import { ABSENT, Cause, decide, type CauseChange, type CauseKey, type Decision, type StoredCause } from "./causes.js";
import { groupKey, type GroupSummary, type InboxRow } from "./group.js";
import { DB_TIME_FORMAT, dbTimeFromMicros, microsFromDbTime } from "../../lib/db/db-time.js";

const SHOWN = 1;
const HIDDEN = 0;
/** Above every Snowflake id: the first page's "before". */
const TOP = 0xffff_ffff_ffff_ffffn;

/** A notification that became visible: what its events and the metrics need. */
export interface Shown {
  readonly id: bigint;
  readonly change: CauseChange;
  /**
   * Its recipient had a Web Push subscription when the transaction that shows
   * it began: only then is its NotificationCreated stored for the push
   * consumer (events.ts).
   */
  readonly pushable: boolean;
}

/**
 * Writes what a transaction shows, in that transaction (the outbox rows of
 * its events), and what follows its commit (Transaction.afterCommit).
 */
export type AnnounceShown = (tx: Transaction, shown: readonly Shown[]) => Promise<unknown>;

export interface NotificationStore {
  /**
   * Applies changes of causes, each under its row's lock: the changes of
   * recipients on one shard in one transaction (up to APPLY_BATCH of them;
   * the shards in parallel), whose `announce` gets what that transaction
   * shows. After each transaction commits, `committed` gets its changes and
   * their decisions (in the order given); a failure of one transaction is
   * thrown once every other one has settled (and been reported).
   *
   * Group commit: calls that meet on a shard while a transaction of theirs
   * runs there share the next one (keys distinct, up to APPLY_BATCH rows);
   * each call's `announce` gets only what its own changes show, in its own
   * trace context. A shared transaction that fails is run again call by
   * call, so one call's failure is not another's.
   */
  applyMany(
    changes: readonly CauseChange[],
    newId: () => bigint,
    announce: AnnounceShown,
    committed: (changes: readonly CauseChange[], decisions: readonly Decision[]) => Promise<void>,
  ): Promise<void>;
  /**
   * Records on the author's shard that `tweetId` notified `recipientIds`;
   * false if the tweet is already deleted. Calls that meet on a shard share
   * the statements (group commit, as applyMany).
   */
  addSources(authorId: bigint, tweetId: bigint, recipientIds: readonly bigint[]): Promise<boolean>;
  /** Marks the tweet deleted and returns whom it had notified. */
  tweetDeleted(authorId: bigint, tweetId: bigint): Promise<bigint[]>;
  /** Forgets the recipients of a deleted tweet (its deletion mark stays). */
  dropSources(authorId: bigint, tweetId: bigint): Promise<void>;
  /** Hides the likes and reposts of a deleted tweet in its author's inbox. */
  hideReactions(authorId: bigint, tweetId: bigint): Promise<number>;
  /** Shown rows of the inbox below `beforeId`, newest first. */
  listRows(recipientId: bigint, beforeId: bigint | undefined, limit: number): Promise<InboxRow[]>;
  /**
   * Shown rows below `beforeId`, newest first, leaving out every like or
   * repost that is not the newest of its group (the grouped view's rows):
   * the older members are skipped in the database, one index probe each.
   */
  listHeads(recipientId: bigint, beforeId: bigint | undefined, limit: number): Promise<InboxRow[]>;
  /** Size, newest member and newest actors (up to `actors`) of each group. */
  groupSummaries(recipientId: bigint, keys: ReadonlyArray<{ cause: Cause; subjectId: bigint }>, actors: number): Promise<Map<string, GroupSummary>>;
  /** The read position: every id at or below it is read. */
  readPosition(userId: bigint): Promise<bigint>;
  /** Shown notifications above the read position, counted up to `cap`. */
  unreadCount(userId: bigint, cap: number): Promise<number>;
  /** Moves the read position to min(upToId or the newest, the newest); never back. */
  markRead(userId: bigint, upToId: bigint): Promise<void>;
}

interface CauseRow {
  recipient_id: string;
  cause: number;
  subject_id: string;
  actor_id: string;
  id: string;
  state: number;
  version: string;
  kind: number;
  event_time: string;
}

/** Changes applied in one transaction at most (its statements carry this many rows). */
export const APPLY_BATCH = 64;
/** Calls whose changes one shard's next transaction may take up (group commit). */
const CALLS_PER_TRANSACTION = 16;
/** Tweets whose sources one statement may write (group commit). */
const TWEETS_PER_SOURCES_WRITE = 32;

/** One addSources call: a tweet and whom it notifies. */
interface SourcesOf {
  readonly authorId: bigint;
  readonly tweetId: bigint;
  readonly recipientIds: readonly bigint[];
}

/** One applyMany call's changes for one transaction, and how that call numbers and announces them. */
interface Part {
  readonly changes: readonly CauseChange[];
  readonly newId: () => bigint;
  readonly announce: AnnounceShown;
  /** Runs `fn` in the calling consumer's trace context: the outbox rows its announce writes carry its trace. */
  readonly inCallerContext: <T>(fn: () => T) => T;
}

/** A part's decisions, or why its transaction failed. */
type PartResult = { readonly decisions: readonly Decision[] } | { readonly error: unknown };

/**
 * Parts in transactions, in arrival order: a part joins the last
 * transaction while its keys are distinct from those already in it (a
 * statement holds each row once) and the rows fit APPLY_BATCH; otherwise it
 * starts the next one, so a key's changes stay in order.
 */
function transactionsOf(parts: readonly Part[]): Part[][] {
  const out: Array<{ keys: Set<string>; rows: number; parts: Part[] }> = [];
  for (const part of parts) {
    const keys = part.changes.map(keyOf);
    let last = out[out.length - 1];
    if (last === undefined || last.rows + keys.length > APPLY_BATCH || keys.some((k) => last!.keys.has(k))) {
      out.push((last = { keys: new Set(), rows: 0, parts: [] }));
    }
    for (const k of keys) last.keys.add(k);
    last.rows += keys.length;
    last.parts.push(part);
  }
  return out.map((t) => t.parts);
}

const keyOf = (k: CauseKey): string => `${k.recipientId}:${k.cause}:${k.subjectId}:${k.actorId}`;
const compareKeys = (a: CauseKey, b: CauseKey): number =>
  a.recipientId !== b.recipientId
    ? a.recipientId < b.recipientId ? -1 : 1
    : a.cause !== b.cause
      ? a.cause - b.cause
      : a.subjectId !== b.subjectId
        ? a.subjectId < b.subjectId ? -1 : 1
        : a.actorId === b.actorId ? 0 : a.actorId < b.actorId ? -1 : 1;

/** Rows padded to a power of two by repeating the last (harmless in these statements), so a handful of statement shapes is prepared. */
function padded<T>(rows: readonly T[]): T[] {
  const size = 2 ** Math.ceil(Math.log2(rows.length));
  return [...rows, ...Array<T>(size - rows.length).fill(rows[rows.length - 1]!)];
}

/** Splits changes into rounds whose keys are distinct (a batch holds each row once); a later round runs after the earlier one. */
function rounds(changes: readonly CauseChange[]): CauseChange[][] {
  const out: Array<{ keys: Set<string>; changes: CauseChange[] }> = [];
  for (const c of changes) {
    const k = keyOf(c);
    let round = out.find((r) => !r.keys.has(k));
    if (round === undefined) out.push((round = { keys: new Set(), changes: [] }));
    round.keys.add(k);
    round.changes.push(c);
  }
  return out.map((r) => r.changes);
}

export interface NotificationStoreOptions {
  /** How long the first change (or tweet's sources) for an idle shard waits for others to share its transaction (keyBatches' lingerMs); default 0. */
  readonly lingerMs?: number;
}

export function createNotificationStore(router: ShardRouter, opts: NotificationStoreOptions = {}): NotificationStore {
  const lingerMs = opts.lingerMs ?? 0;
  // A plain read, no lock: called after the transaction's own write (the
  // placeholder, the source rows), its snapshot is taken here, so a deletion
  // committed before it is seen, and a deletion still in flight meets that
  // write (its UPDATE waits on the row, its locking read on the sources)
  // and undoes it after this commits. No shared gap lock, so concurrent
  // writers of one tweet's sources cannot deadlock on it.
  // The tweets found marked, as "author:tweet".
  // Deferred to the transaction's COMMIT, after its write of the source rows.
  const tombstones = async (tx: Transaction, tweets: ReadonlyArray<{ readonly authorId: bigint; readonly tweetId: bigint }>): Promise<Set<string>> => {
    const pairs = padded(tweets);
    const rows = await tx.deferRead<{ author_id: string; tweet_id: string }>(
      `SELECT author_id, tweet_id FROM chirp.notification_sources WHERE ${pairs.map(() => "(author_id = ? AND tweet_id = ? AND recipient_id = 0)").join(" OR ")}`,
      pairs.flatMap((t) => [t.authorId, t.tweetId]),
    );
    return new Set(rows.map((r) => `${r.author_id}:${r.tweet_id}`));
  };

  const where = "recipient_id = ? AND cause = ? AND subject_id = ? AND actor_id = ?";
  const keyParams = (k: CauseKey): SqlValue[] => [k.recipientId, k.cause, k.subjectId, k.actorId];
  const columns = "(recipient_id, cause, subject_id, actor_id, id, kind, state, version, event_time)";
  const rowValues = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";

  /**
   * One transaction on the recipients' shard: every change's row written if
   * it is missing (as decide() would leave it from nothing: shown with its new
   * id, or a hidden row at the change's version, or a hidden placeholder at
   * version 0), and locked if it is there, in one multi-row upsert (ON
   * DUPLICATE KEY takes the existing row's exclusive lock, so two changes of
   * one cause queue instead of deadlocking on the gap; the rows in key
   * order, so two batches lock in the same order); then the rows read back
   * under that lock (a row carrying the id proposed for it was missing),
   * decide() for the rows that were there, one multi-row upsert with what
   * changes, and the outbox rows of what shows, each part's by its own
   * announce. The parts' keys are distinct (transactionsOf). Which of the
   * recipients have a Web Push subscription (on this same shard: a user's
   * rows live together) is read in the upsert's round trip.
   */
  const applyBatch = (shard: ShardRef, parts: readonly Part[]): Promise<Decision[][]> =>
    router.transaction(shard, async (tx) => {
      const partOf = new Map<string, Part>();
      for (const part of parts) for (const c of part.changes) partOf.set(keyOf(c), part);
      // Ids minted in arrival order (the parts', then each part's changes'), so that an inbox,
      // newest first by id, lists what its events did in the order they came; the rows are
      // written in key order (lock order).
      const proposed = new Map<string, bigint>();
      for (const part of parts) for (const c of part.changes) proposed.set(keyOf(c), part.newId());
      const sorted = parts.flatMap((p) => p.changes).sort(compareKeys);
      // Only a change that happens can show (undos never do).
      const recipients = padded([...new Set(sorted.filter((c) => c.active).map((c) => c.recipientId))]);
      const subscribed =
        recipients.length === 0
          ? Promise.resolve([])
          : tx.deferRead<{ user_id: string }>(
              `SELECT DISTINCT user_id FROM chirp.push_subscriptions WHERE user_id IN (${recipients.map(() => "?").join(", ")})`,
              recipients,
            );
      // Awaited once the rows are decided; a transaction that fails before then rejects it unread.
      subscribed.catch(() => undefined);
      const insert: SqlValue[][] = [];
      for (const c of sorted) {
        const id = proposed.get(keyOf(c))!;
        const fresh = decide(ABSENT, c);
        const state = fresh === "show" ? SHOWN : HIDDEN;
        const version = fresh === "none" ? 0n : c.version;
        insert.push([...keyParams(c), id, c.kind, state, version, dbTimeFromMicros(c.timeMicros)]);
      }
      // Not padded: a repeated row would be a duplicate. On a duplicate the
      // UPDATE clause calls LAST_INSERT_ID(1), which the OK packet carries as
      // the statement's insert id (the table has no AUTO_INCREMENT, so it is
      // 0 otherwise), and leaves the row as it was (still locked).
      const upsert = await tx.execute(
        `INSERT INTO chirp.notifications ${columns} VALUES ${insert.map(() => rowValues).join(", ")}
         ON DUPLICATE KEY UPDATE recipient_id = IF(LAST_INSERT_ID(1) = 1, recipient_id, recipient_id)`,
        insert.flat(),
      );
      let found: CauseRow[];
      if (upsert.insertId === "0") {
        // Every row was missing, and is now as decided: nothing to read back.
        found = insert.map((v) => ({
          recipient_id: String(v[0]),
          cause: Number(v[1]),
          subject_id: String(v[2]),
          actor_id: String(v[3]),
          id: String(v[4]),
          kind: Number(v[5]),
          state: Number(v[6]),
          version: String(v[7]),
          event_time: String(v[8]),
        }));
      } else {
        const keys = padded(sorted);
        found = await tx.query<CauseRow>(
          `SELECT recipient_id, cause, subject_id, actor_id, id, state, version, kind, DATE_FORMAT(event_time, '${DB_TIME_FORMAT}') AS event_time
           FROM chirp.notifications WHERE ${keys.map(() => `(${where})`).join(" OR ")} FOR UPDATE`,
          keys.flatMap(keyParams),
        );
      }
      const stored = new Map(found.map((r) => [`${r.recipient_id}:${r.cause}:${r.subject_id}:${r.actor_id}`, r]));
      const decided = new Map<string, Decision>();
      /** What each row must become beyond what is stored now: key -> row values. */
      const writes = new Map<string, SqlValue[]>();
      const shows: CauseChange[] = [];
      for (const c of sorted) {
        const k = keyOf(c);
        const row = stored.get(k);
        if (row === undefined) throw new Error(`notification row ${k} not found under its lock`);
        const inserted = BigInt(row.id) === proposed.get(k);
        const before: StoredCause = inserted ? ABSENT : { active: Number(row.state) === SHOWN, version: BigInt(row.version), kind: Number(row.kind) };
        const decision = decide(before, c);
        decided.set(k, decision);
        if (decision === "show") shows.push(c);
        if (inserted) continue; // written as decided already
        const next = { id: String(row.id), kind: Number(row.kind), state: Number(row.state), version: String(row.version), time: row.event_time };
        if (decision === "show") Object.assign(next, { id: String(proposed.get(k)), kind: c.kind, state: SHOWN, version: String(c.version), time: dbTimeFromMicros(c.timeMicros) });
        else if (decision === "hide") Object.assign(next, { state: HIDDEN, version: String(c.version) });
        else if (decision === "version") next.version = String(c.version);
        else if (decision === "kind") next.kind = c.kind;
        else continue;
        writes.set(k, [...keyParams(c), next.id, next.kind, next.state, next.version, next.time]);
      }
      // A like or repost of a tweet deleted meanwhile is recorded, never shown
      // (the mark is on this same shard: the tweet's author is the recipient;
      // read after this transaction wrote the rows, see tombstones).
      const reactions = shows.filter((c) => c.cause === Cause.like || c.cause === Cause.repost);
      const marked = new Set<string>();
      if (reactions.length > 0) {
        const pairs = padded(reactions);
        const marks = await tx.query<{ author_id: string; tweet_id: string }>(
          `SELECT author_id, tweet_id FROM chirp.notification_sources WHERE ${pairs.map(() => "(author_id = ? AND tweet_id = ? AND recipient_id = 0)").join(" OR ")}`,
          pairs.flatMap((c) => [c.recipientId, c.subjectId]),
        );
        for (const m of marks) marked.add(`${m.author_id}:${m.tweet_id}`);
      }
      const pushable = new Set((await subscribed).map((r) => BigInt(r.user_id)));
      const shown = new Map<Part, Shown[]>();
      for (const c of shows) {
        const k = keyOf(c);
        if (!marked.has(`${c.recipientId}:${c.subjectId}`)) {
          const part = partOf.get(k)!;
          const own = shown.get(part);
          const one = { id: proposed.get(k)!, change: c, pushable: pushable.has(c.recipientId) };
          if (own === undefined) shown.set(part, [one]);
          else own.push(one);
          continue;
        }
        decided.set(k, "version");
        const row = stored.get(k)!;
        const inserted = BigInt(row.id) === proposed.get(k);
        // Recorded at the change's version, visibility as it was (hidden: a show is decided only for a hidden row).
        writes.set(k, [...keyParams(c), inserted ? "0" : String(row.id), inserted ? c.kind : Number(row.kind), HIDDEN, String(c.version), inserted ? dbTimeFromMicros(c.timeMicros) : row.event_time]);
      }
      if (writes.size > 0) {
        const update = padded([...writes.values()]);
        await tx.execute(
          `INSERT INTO chirp.notifications ${columns} VALUES ${update.map(() => rowValues).join(", ")}
           ON DUPLICATE KEY UPDATE id = VALUES(id), kind = VALUES(kind), state = VALUES(state), version = VALUES(version), event_time = VALUES(event_time)`,
          update.flat(),
        );
      }
      for (const part of parts) {
        const own = shown.get(part);
        if (own !== undefined) await part.inCallerContext(() => part.announce(tx, own));
      }
      return parts.map((p) => p.changes.map((c) => decided.get(keyOf(c))!));
    });

  /**
   * One shard's parts that arrived while its previous transaction ran, in as
   * few transactions as transactionsOf allows. A shared transaction that
   * fails runs again part by part: a part that cannot apply (a row the
   * statement refuses) fails alone, and a deadlock between two shared
   * batches costs each part one more try.
   */
  const applyParts = async (shard: ShardRef, parts: readonly Part[]): Promise<PartResult[]> => {
    const results: PartResult[] = [];
    for (const together of transactionsOf(parts)) {
      try {
        for (const decisions of await applyBatch(shard, together)) results.push({ decisions });
      } catch (err) {
        if (together.length === 1) {
          results.push({ error: err });
          continue;
        }
        for (const part of together) {
          try {
            results.push({ decisions: (await applyBatch(shard, [part]))[0]! });
          } catch (alone) {
            results.push({ error: alone });
          }
        }
      }
    }
    return results;
  };
  /**
   * Tweets' source rows on their authors' shard, those of tweets that arrive
   * while the previous write runs together: the rows first, then the marks
   * (see tombstones), in one round trip: a transaction whose BEGIN goes with
   * its COMMIT (rerunnable: the tweet's event is handled again after any
   * failure, and the rows' upsert changes nothing the second time). The
   * deletion's locking read of the recipients either sees these rows
   * (committed before it; it waits on them while this runs) or holds the
   * range's gap until it commits, so the INSERT waits and the read after it
   * finds the mark. The rows of a tweet found deleted are taken out again,
   * and it reports false.
   */
  const writeSources = async (shard: ShardRef, tweets: readonly SourcesOf[]): Promise<boolean[]> => {
    const rows = padded(tweets.flatMap((t) => t.recipientIds.map((r) => [t.authorId, t.tweetId, r] as const)));
    const { marks } = await router.transaction(
      shard,
      async (tx) => {
        tx.defer(
          `INSERT INTO chirp.notification_sources (author_id, tweet_id, recipient_id) VALUES ${rows.map(() => "(?, ?, ?)").join(", ")}
           ON DUPLICATE KEY UPDATE recipient_id = recipient_id`,
          rows.flat(),
        );
        // Answered with the COMMIT, after this returns: not awaited in here.
        return { marks: tombstones(tx, tweets) };
      },
      { rerunnable: true },
    );
    const marked = await marks;
    const primary = router.primary(shard);
    for (const t of tweets) {
      if (!marked.has(`${t.authorId}:${t.tweetId}`)) continue;
      await primary.execute(
        `DELETE FROM chirp.notification_sources WHERE author_id = ? AND tweet_id = ? AND recipient_id IN (${t.recipientIds.map(() => "?").join(", ")})`,
        [t.authorId, t.tweetId, ...t.recipientIds],
      );
    }
    return tweets.map((t) => !marked.has(`${t.authorId}:${t.tweetId}`));
  };
  const addSourcesOnShard = keyBatches<string, SourcesOf & { readonly shard: ShardRef }, boolean>((_name, tweets) => writeSources(tweets[0]!.shard, tweets), {
    maxBatch: TWEETS_PER_SOURCES_WRITE,
    lingerMs,
  });

  const applyOnShard = keyBatches<string, { readonly shard: ShardRef; readonly part: Part }, PartResult>(
    (_name, items) => applyParts(items[0]!.shard, items.map((i) => i.part)),
    { maxBatch: CALLS_PER_TRANSACTION, lingerMs },
  );

  return {
    async applyMany(changes, newId, announce, committed) {
      if (changes.length === 0) return;
      const inCallerContext = keepTraceContext();
      const groups = router.byShard(changes, (c) => router.shardForUser(c.recipientId));
      const settled = await Promise.allSettled(
        [...groups.values()].map(async ({ shard, items }) => {
          // One shard's changes in order: a round per repeated key, APPLY_BATCH per transaction.
          for (const round of rounds(items)) {
            for (let i = 0; i < round.length; i += APPLY_BATCH) {
              const batch = round.slice(i, i + APPLY_BATCH);
              const result = await applyOnShard(shard.name, { shard, part: { changes: batch, newId, announce, inCallerContext } });
              if ("error" in result) throw result.error;
              await committed(batch, result.decisions);
            }
          }
        }),
      );
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed !== undefined) throw failed.reason;
    },

    async addSources(authorId, tweetId, recipientIds) {
      if (recipientIds.length === 0) return true;
      const shard = router.shardForUser(authorId);
      return addSourcesOnShard(shard.name, { shard, authorId, tweetId, recipientIds });
    },

    async tweetDeleted(authorId, tweetId) {
      return router.transaction(router.shardForUser(authorId), async (tx) => {
        await tx.execute(
          "INSERT INTO chirp.notification_sources (author_id, tweet_id, recipient_id) VALUES (?, ?, 0) ON DUPLICATE KEY UPDATE recipient_id = recipient_id",
          [authorId, tweetId],
        );
        // A locking read: it waits for a source row being written now, and so
        // returns every recipient whose writer did not see the mark.
        const rows = await tx.query<{ recipient_id: string }>(
          "SELECT recipient_id FROM chirp.notification_sources WHERE author_id = ? AND tweet_id = ? AND recipient_id <> 0 LOCK IN SHARE MODE",
          [authorId, tweetId],
        );
        return rows.map((r) => BigInt(r.recipient_id));
      });
    },

    async dropSources(authorId, tweetId) {
      await router
        .primaryForUser(authorId)
        .execute("DELETE FROM chirp.notification_sources WHERE author_id = ? AND tweet_id = ? AND recipient_id <> 0", [authorId, tweetId]);
    },

    async hideReactions(authorId, tweetId) {
      const r = await router
        .primaryForUser(authorId)
        .execute(
          `UPDATE chirp.notifications SET state = ${HIDDEN} WHERE recipient_id = ? AND cause IN (${Cause.like}, ${Cause.repost}) AND subject_id = ? AND state = ${SHOWN}`,
          [authorId, tweetId],
        );
      return r.affectedRows;
    },

    async listRows(recipientId, beforeId, limit) {
      // One backward range of notifications_inbox (recipient, state, id), stopped at the LIMIT.
      return inboxRows(
        await router.primaryForUser(recipientId).query<RawInboxRow>(
          `SELECT id, cause, subject_id, actor_id, kind, DATE_FORMAT(event_time, '${DB_TIME_FORMAT}') AS event_time
           FROM chirp.notifications WHERE recipient_id = ? AND state = ${SHOWN} AND id < ?
           ORDER BY id DESC LIMIT ${sqlLimit(limit)}`,
          [recipientId, beforeId ?? TOP],
        ),
      );
    },

    async listHeads(recipientId, beforeId, limit) {
      // The same backward range; a like or repost row stays only if it is its
      // group's newest: the last entry of its group's range of
      // notifications_group (recipient, cause, subject, state, id), one index
      // entry read per row walked. The index is forced and the newest read
      // with ORDER BY ... LIMIT 1: left alone, MariaDB 10.11 probed the
      // primary key and read the whole group for every row (7 s for a group
      // of 10,000; this: 6 ms).
      return inboxRows(
        await router.primaryForUser(recipientId).query<RawInboxRow>(
          `SELECT n.id, n.cause, n.subject_id, n.actor_id, n.kind, DATE_FORMAT(n.event_time, '${DB_TIME_FORMAT}') AS event_time
           FROM chirp.notifications n WHERE n.recipient_id = ? AND n.state = ${SHOWN} AND n.id < ?
             AND (n.cause NOT IN (${Cause.like}, ${Cause.repost}) OR n.id = (
               SELECT m.id FROM chirp.notifications m FORCE INDEX (notifications_group)
               WHERE m.recipient_id = n.recipient_id AND m.cause = n.cause AND m.subject_id = n.subject_id AND m.state = ${SHOWN}
               ORDER BY m.id DESC LIMIT 1))
           ORDER BY n.id DESC LIMIT ${sqlLimit(limit)}`,
          [recipientId, beforeId ?? TOP],
        ),
      );
    },

    async groupSummaries(recipientId, keys, actors) {
      const out = new Map<string, GroupSummary>();
      if (keys.length === 0) return out;
      // Per group, its size (a range of notifications_group, the index
      // alone: counted, not sorted) and its newest `actors` members (the
      // range's last entries), in one statement.
      const group = "recipient_id = ? AND cause = ? AND subject_id = ? AND state = " + SHOWN;
      const parts = keys.flatMap(() => [
        `(SELECT 'n' AS t, cause, subject_id, 0 AS actor_id, 0 AS id, COUNT(*) AS n FROM chirp.notifications FORCE INDEX (notifications_group) WHERE ${group} GROUP BY cause, subject_id)`,
        `(SELECT 'a' AS t, cause, subject_id, actor_id, id, 0 AS n FROM chirp.notifications FORCE INDEX (notifications_group) WHERE ${group} ORDER BY id DESC LIMIT ${sqlLimit(actors)})`,
      ]);
      const rows = await router
        .primaryForUser(recipientId)
        .query<{ t: string; cause: number; subject_id: string; actor_id: string; id: string; n: number }>(
          parts.join(" UNION ALL "),
          keys.flatMap((k) => [recipientId, k.cause, k.subjectId, recipientId, k.cause, k.subjectId]),
        );
      const members = new Map<string, Array<{ id: bigint; actorId: bigint }>>();
      const sizes = new Map<string, number>();
      for (const r of rows) {
        const key = groupKey(Number(r.cause) as Cause, BigInt(r.subject_id));
        if (r.t === "n") sizes.set(key, Number(r.n));
        else members.set(key, [...(members.get(key) ?? []), { id: BigInt(r.id), actorId: BigInt(r.actor_id) }]);
      }
      for (const [key, list] of members) {
        list.sort((a, b) => (a.id > b.id ? -1 : a.id < b.id ? 1 : 0));
        out.set(key, { newestId: list[0]!.id, size: sizes.get(key) ?? list.length, actorIds: list.map((m) => m.actorId) });
      }
      return out;
    },

    async readPosition(userId) {
      const [row] = await router
        .primaryForUser(userId)
        .query<{ read_through_id: string }>("SELECT read_through_id FROM chirp.notification_reads WHERE user_id = ?", [userId]);
      return row === undefined ? 0n : BigInt(row.read_through_id);
    },

    async unreadCount(userId, cap) {
      // The unread rows are one range of notifications_inbox: counting reads
      // the index entries above the position and no more than `cap` of them.
      const [row] = await router.primaryForUser(userId).query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM (
           SELECT 1 FROM chirp.notifications
           WHERE recipient_id = ? AND state = ${SHOWN}
             AND id > COALESCE((SELECT read_through_id FROM chirp.notification_reads WHERE user_id = ?), 0)
           LIMIT ${sqlLimit(cap)}
         ) unread`,
        [userId, userId],
      );
      return Number(row?.n ?? 0);
    },

    async markRead(userId, upToId) {
      const primary = router.primaryForUser(userId);
      const [row] = await primary.query<{ newest: string | null }>(
        `SELECT MAX(id) AS newest FROM chirp.notifications WHERE recipient_id = ? AND state = ${SHOWN}`,
        [userId],
      );
      const newest = row?.newest === null || row?.newest === undefined ? 0n : BigInt(row.newest);
      const position = upToId === 0n || upToId > newest ? newest : upToId;
      if (position === 0n) return;
      // GREATEST over the column and VALUES(), both BIGINT: with the string parameter itself
      // the comparison (and its result) would be a double, which loses ids past 2^53.
      await primary.execute(
        `INSERT INTO chirp.notification_reads (user_id, read_through_id) VALUES (?, ?)
         ON DUPLICATE KEY UPDATE read_through_id = GREATEST(read_through_id, VALUES(read_through_id))`,
        [userId, position],
      );
    },
  };
}

interface RawInboxRow {
  id: string;
  cause: number;
  subject_id: string;
  actor_id: string;
  kind: number;
  event_time: string;
}

function inboxRows(rows: RawInboxRow[]): InboxRow[] {
  return rows.map((r) => ({
    id: BigInt(r.id),
    cause: Number(r.cause) as Cause,
    subjectId: BigInt(r.subject_id),
    actorId: BigInt(r.actor_id),
    kind: Number(r.kind),
    timeMicros: microsFromDbTime(r.event_time),
  }));
}

// LIMIT is written into the statement (a bound LIMIT is refused by MySQL
// 8.0.22+ over the binary protocol when sent as a double); the value is an
// integer checked here, never client text.
function sqlLimit(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1001) throw new RangeError(`bad limit ${n}`);
  return n;
}

/** A stored Web Push subscription (migration 0016). */
export interface PushSubscriptionRow {
  /** SHA-256 of the endpoint: the row's key with the user. */
  readonly endpointHash: Buffer;
  readonly endpoint: string;
  readonly p256dh: string;
  readonly auth: string;
}

/** The caller's browsers to push to, on the user's shard. */
export interface PushSubscriptionStore {
  /** Stores (or refreshes) a subscription; beyond `keep` per user the oldest go. */
  add(userId: bigint, sub: { endpoint: string; p256dh: string; auth: string }, keep: number): Promise<void>;
  /** Removes the user's subscription with this endpoint; false when there was none. */
  remove(userId: bigint, endpoint: string): Promise<boolean>;
  /** Every subscription of the user. */
  list(userId: bigint): Promise<PushSubscriptionRow[]>;
  /** Drops a subscription its push service called gone, unless it was registered again with other keys since. */
  drop(userId: bigint, row: PushSubscriptionRow): Promise<void>;
}

export function endpointHash(endpoint: string): Buffer {
  return createHash("sha256").update(endpoint).digest();
}

export function createPushSubscriptionStore(router: ShardRouter): PushSubscriptionStore {
  return {
    async add(userId, sub, keep) {
      if (!Number.isInteger(keep) || keep < 1 || keep > 1000) throw new RangeError(`bad keep ${keep}`);
      await router.transaction(router.shardForUser(userId), async (tx) => {
        await tx.execute(
          `INSERT INTO chirp.push_subscriptions (user_id, endpoint_hash, endpoint, p256dh, auth, create_time)
           VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))
           ON DUPLICATE KEY UPDATE endpoint = VALUES(endpoint), p256dh = VALUES(p256dh), auth = VALUES(auth), create_time = VALUES(create_time)`,
          [userId, endpointHash(sub.endpoint), sub.endpoint, sub.p256dh, sub.auth],
        );
        // The user's rows locked in one range, newest first: whatever is past `keep` goes.
        const old = await tx.query<{ endpoint_hash: Buffer }>(
          `SELECT endpoint_hash FROM chirp.push_subscriptions WHERE user_id = ?
           ORDER BY create_time DESC, endpoint_hash LIMIT 1000 OFFSET ${keep} FOR UPDATE`,
          [userId],
        );
        for (const r of old) await tx.execute("DELETE FROM chirp.push_subscriptions WHERE user_id = ? AND endpoint_hash = ?", [userId, r.endpoint_hash]);
      });
    },

    async remove(userId, endpoint) {
      const result = await router
        .primaryForUser(userId)
        .execute("DELETE FROM chirp.push_subscriptions WHERE user_id = ? AND endpoint_hash = ?", [userId, endpointHash(endpoint)]);
      return result.affectedRows > 0;
    },

    async list(userId) {
      // The primary: a subscription just registered gets the next notification.
      const rows = await router
        .primaryForUser(userId)
        .query<{ endpoint_hash: Buffer; endpoint: string; p256dh: string; auth: string }>(
          "SELECT endpoint_hash, endpoint, p256dh, auth FROM chirp.push_subscriptions WHERE user_id = ?",
          [userId],
        );
      return rows.map((r) => ({ endpointHash: Buffer.from(r.endpoint_hash), endpoint: String(r.endpoint), p256dh: String(r.p256dh), auth: String(r.auth) }));
    },

    async drop(userId, row) {
      await router
        .primaryForUser(userId)
        .execute("DELETE FROM chirp.push_subscriptions WHERE user_id = ? AND endpoint_hash = ? AND p256dh = ? AND auth = ?", [
          userId,
          row.endpointHash,
          row.p256dh,
          row.auth,
        ]);
    },
  };
}

/**
 * A deleted account's inbox: up to `limit` of its notification rows deleted
 * (how many: fewer than `limit` means none is left), and with the last batch
 * its read position and its push subscriptions.
 */
export async function eraseInbox(router: ShardRouter, userId: bigint, limit: number): Promise<number> {
  const db = router.primaryForUser(userId);
  const result = await db.execute(`DELETE FROM chirp.notifications WHERE recipient_id = ? LIMIT ${Math.trunc(limit)}`, [userId]);
  if (result.affectedRows < limit) {
    await db.execute("DELETE FROM chirp.notification_reads WHERE user_id = ?", [userId]);
    await db.execute("DELETE FROM chirp.push_subscriptions WHERE user_id = ?", [userId]);
  }
  return result.affectedRows;
}
