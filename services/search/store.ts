// All of the search service's SQL: the index tables of migration 0009
// (search_docs, search_postings), on the shard of the tweet id.
//
// A query on one shard is two statements:
//   1. how many postings each term has (counted up to ESTIMATE_CAP, below
//      the cursor): the rarest term drives, and a term with none ends it;
//   2. the driving term's list read backwards from the cursor, each tweet
//      checked against the other terms by primary key lookups, then its doc
//      row read (the author, for hydration; the body, for phrases by INSTR),
//      stopping at the LIMIT.
// Newest first needs no sort: the driving list is already in tweet id order.
import { Code, ConnectError } from "@connectrpc/connect";
import type { ShardInfo } from "../../lib/shard/types.js";
import { executeOrDefer, type Queryable, type ShardRef, type ShardRouter, type SqlValue } from "../../lib/shard/router.js";

/** Postings counted per term to choose the driving one; more is "common". */
export const ESTIMATE_CAP = 2000;
/** Posting rows per multi-row statement. */
const ROWS_PER_STATEMENT = 500;
/** Doc rows per multi-row statement. */
const DOCS_PER_STATEMENT = 100;

export interface IndexedDoc {
  readonly tweetId: bigint;
  readonly authorId: bigint;
  readonly body: string;
  readonly terms: readonly string[];
}

export interface ShardQuery {
  /** Posting terms that must all be present (at least one). */
  readonly terms: readonly string[];
  /** Needles (` a b `) that must all occur in the body. */
  readonly needles: readonly string[];
  /** Only tweets with a smaller id (the page cursor). */
  readonly before: bigint | undefined;
  readonly limit: number;
}

/** A match: the tweet and its author (whose shard holds the tweet). */
export interface Hit {
  readonly tweetId: bigint;
  readonly authorId: bigint;
}

export type IndexResult = "indexed" | "exists";
export type DeleteResult = "deleted" | "tombstoned" | "already";

export interface SearchStore {
  /** Indexes a tweet once: a tweet already known (indexed, or deleted) is left alone. */
  indexTweet(doc: IndexedDoc): Promise<IndexResult>;
  /**
   * indexTweet for several tweets of one shard in one transaction (one
   * commit), each with its own result. The tweets must all live on `shard`.
   */
  indexTweets(shard: ShardRef, docs: readonly IndexedDoc[]): Promise<IndexResult[]>;
  /** Removes a tweet's postings and leaves a tombstone (also for a tweet never indexed). */
  deleteTweet(tweetId: bigint, authorId: bigint): Promise<DeleteResult>;
  /** Matching tweets on one shard, newest first, at most `limit`. */
  searchShard(shard: ShardRef, query: ShardQuery): Promise<Hit[]>;
  /** The shard of a tweet's index rows. */
  shardOf(tweetId: bigint): ShardInfo;
  /**
   * Bulk loading for the benchmark: docs and postings of tweets known to be
   * new, written in plain multi-row INSERTs on the shard's primary.
   */
  bulkInsert(shard: ShardRef, docs: readonly IndexedDoc[], postings: readonly (readonly [term: string, tweetId: bigint])[]): Promise<void>;
}

export function createSearchStore(router: ShardRouter): SearchStore {
  const shardOf = (tweetId: bigint): ShardInfo => router.shardForUser(tweetId);

  /** In a transaction, deferred to go with its COMMIT (Transaction.defer): nothing reads the result. */
  const insertPostings = async (tx: Queryable, rows: readonly (readonly [string, bigint])[]): Promise<void> => {
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
      const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
      const params: SqlValue[] = [];
      for (const [term, id] of chunk) params.push(term, id.toString());
      await executeOrDefer(tx, `INSERT INTO chirp.search_postings (term, tweet_id) VALUES ${placeholders(chunk.length, 2)}`, params);
    }
  };

  /**
   * The docs in one round trip: a transaction of deferred statements, its
   * BEGIN with its COMMIT (rerunnable: an event's handler runs it again
   * after any failure, and a second run changes nothing). Each doc's row goes
   * in with INSERT IGNORE, which only ever meets the duplicate key here
   * (every value fits its column): the tweet is indexed already, or a
   * tombstone says it was deleted first, and either way there is nothing to
   * do; so its postings go in only when ROW_COUNT() says the row is new. (A
   * repeat within the batch meets the row inserted just before.)
   */
  const indexDocs = async (shard: ShardRef, docs: readonly IndexedDoc[]): Promise<IndexResult[]> => {
    const { inserted } = await router.transaction(
      shard,
      async (tx) => {
        const inserted = docs.map((doc) => {
          const row = tx.deferExecute(
            `INSERT IGNORE INTO chirp.search_docs (tweet_id, author_id, state, body, terms, update_time)
             VALUES (?, ?, 1, ?, ?, UTC_TIMESTAMP(6))`,
            [doc.tweetId.toString(), doc.authorId.toString(), doc.body, doc.terms.join(" ")],
          );
          tx.defer("SET @chirp_doc_inserted = ROW_COUNT()");
          for (let i = 0; i < doc.terms.length; i += ROWS_PER_STATEMENT) {
            const chunk = doc.terms.slice(i, i + ROWS_PER_STATEMENT);
            const rows = chunk.map((_, n) => (n === 0 ? "SELECT ? AS term, ? AS tweet_id" : "SELECT ?, ?")).join(" UNION ALL ");
            tx.defer(
              `INSERT INTO chirp.search_postings (term, tweet_id) SELECT term, tweet_id FROM (${rows}) AS fresh WHERE @chirp_doc_inserted = 1`,
              chunk.flatMap((t) => [t, doc.tweetId.toString()]),
            );
          }
          return row;
        });
        // Not awaited in here: the answers come with the COMMIT, after this returns.
        return { inserted };
      },
      { rerunnable: true },
    );
    return (await Promise.all(inserted)).map((r): IndexResult => (r.affectedRows === 1 ? "indexed" : "exists"));
  };

  return {
    shardOf,

    indexTweet: async (doc) => (await indexDocs(shardOf(doc.tweetId), [doc]))[0]!,

    indexTweets: async (shard, docs) => {
      if (docs.length === 1) return indexDocs(shard, docs);
      // The batch in three statements and two round trips: which tweets the
      // shard knows already (a plain read: no locks), sent with the BEGIN;
      // then every other doc row in one INSERT and all their postings, with
      // the COMMIT. A tweet that another transaction indexes or deletes in
      // between makes the INSERT fail on its key; then the batch goes again
      // one tweet at a time, which sorts that out under the rows' locks.
      try {
        return await router.transaction(shard, async (tx) => {
          const ids = [...new Set(docs.map((d) => d.tweetId.toString()))];
          const knownRows = tx.deferRead<{ tweet_id: string }>(`SELECT tweet_id FROM chirp.search_docs WHERE tweet_id IN (${placeholders(ids.length, 1)})`, ids);
          await tx.flush();
          const known = new Set((await knownRows).map((r) => BigInt(r.tweet_id)));
          const results: IndexResult[] = [];
          const fresh: IndexedDoc[] = [];
          for (const doc of docs) {
            if (known.has(doc.tweetId)) results.push("exists");
            else {
              known.add(doc.tweetId); // a repeat within the batch
              fresh.push(doc);
              results.push("indexed");
            }
          }
          for (let i = 0; i < fresh.length; i += DOCS_PER_STATEMENT) {
            const chunk = fresh.slice(i, i + DOCS_PER_STATEMENT);
            const params: SqlValue[] = [];
            for (const d of chunk) params.push(d.tweetId.toString(), d.authorId.toString(), d.body, d.terms.join(" "));
            tx.defer(`INSERT INTO chirp.search_docs (tweet_id, author_id, state, body, terms, update_time) VALUES ${repeat("(?, ?, 1, ?, ?, UTC_TIMESTAMP(6))", chunk.length)}`, params);
          }
          await insertPostings(
            tx,
            fresh.flatMap((d) => d.terms.map((t) => [t, d.tweetId] as const)),
          );
          return results;
        });
      } catch (err) {
        if (!(err instanceof ConnectError && err.code === Code.AlreadyExists)) throw err;
        return indexDocs(shard, docs);
      }
    },

    deleteTweet: (tweetId, authorId) =>
      router.transaction(shardOf(tweetId), async (tx) => {
        // A tombstone for a tweet never seen: its TweetCreated, if it comes
        // later, finds the row and indexes nothing.
        const inserted = await tx.execute(
          `INSERT IGNORE INTO chirp.search_docs (tweet_id, author_id, state, body, terms, update_time)
           VALUES (?, ?, 0, '', '', UTC_TIMESTAMP(6))`,
          [tweetId.toString(), authorId.toString()],
        );
        if (inserted.affectedRows === 1) return "tombstoned";
        const [row] = await tx.query<{ state: number; terms: string }>(
          "SELECT state, terms FROM chirp.search_docs WHERE tweet_id = ? FOR UPDATE",
          [tweetId.toString()],
        );
        if (row === undefined || Number(row.state) === 0) return "already";
        const terms = row.terms === "" ? [] : row.terms.split(" ");
        for (let i = 0; i < terms.length; i += ROWS_PER_STATEMENT) {
          const chunk = terms.slice(i, i + ROWS_PER_STATEMENT);
          await tx.execute(`DELETE FROM chirp.search_postings WHERE tweet_id = ? AND term IN (${placeholders(chunk.length, 1)})`, [
            tweetId.toString(),
            ...chunk,
          ]);
        }
        await tx.execute("UPDATE chirp.search_docs SET state = 0, body = '', terms = '', update_time = UTC_TIMESTAMP(6) WHERE tweet_id = ?", [
          tweetId.toString(),
        ]);
        return "deleted";
      }),

    searchShard: async (shard, q) => {
      if (q.terms.length === 0) throw new RangeError("a shard query needs at least one term");
      const db = router.reader(shard);
      const before = q.before === undefined ? [] : [q.before.toString()];
      const below = q.before === undefined ? "" : " AND tweet_id < ?";

      // 1. The rarest term drives.
      let order = [...q.terms];
      if (order.length > 1) {
        const selects = order.map(
          (_, i) => `(SELECT COUNT(*) FROM (SELECT 1 FROM chirp.search_postings WHERE term = ?${below} LIMIT ${ESTIMATE_CAP}) e${i}) AS c${i}`,
        );
        const params: SqlValue[] = order.flatMap((t) => [t, ...before]);
        const [counts] = await db.query<Record<string, unknown>>(`SELECT ${selects.join(", ")}`, params);
        const sized = order.map((term, i) => ({ term, n: Number(counts?.[`c${i}`] ?? 0) }));
        if (sized.some((s) => s.n === 0)) return [];
        order = sized.sort((a, b) => a.n - b.n).map((s) => s.term);
      }

      // 2. Walk the driving list newest first. STRAIGHT_JOIN keeps that
      // order: the optimizer's own estimates do not know which term is rare
      // below this cursor.
      const joins: string[] = [];
      const params: SqlValue[] = [];
      for (let i = 1; i < order.length; i++) {
        joins.push(`JOIN chirp.search_postings p${i} ON p${i}.term = ? AND p${i}.tweet_id = p0.tweet_id`);
        params.push(order[i]!);
      }
      // Last: read only for tweets that have every term.
      joins.push("JOIN chirp.search_docs d ON d.tweet_id = p0.tweet_id");
      params.push(order[0]!, ...before);
      for (const needle of q.needles) params.push(needle);
      const sql =
        `SELECT STRAIGHT_JOIN p0.tweet_id, d.author_id FROM chirp.search_postings p0 ${joins.join(" ")}` +
        ` WHERE p0.term = ?${q.before === undefined ? "" : " AND p0.tweet_id < ?"}` +
        q.needles.map(() => " AND INSTR(d.body, ?) > 0").join("") +
        ` ORDER BY p0.tweet_id DESC LIMIT ${sqlLimit(q.limit)}`;
      const rows = await db.query<{ tweet_id: string | number | bigint; author_id: string | number | bigint }>(sql, params);
      return rows.map((r) => ({ tweetId: BigInt(r.tweet_id), authorId: BigInt(r.author_id) }));
    },

    bulkInsert: async (shard, docs, postings) => {
      const db = router.primary(shard);
      const docRows = 200;
      for (let i = 0; i < docs.length; i += docRows) {
        const chunk = docs.slice(i, i + docRows);
        const params: SqlValue[] = [];
        for (const d of chunk) params.push(d.tweetId.toString(), d.authorId.toString(), d.body, d.terms.join(" "));
        await db.execute(
          `INSERT INTO chirp.search_docs (tweet_id, author_id, state, body, terms, update_time) VALUES ${repeat("(?, ?, 1, ?, ?, UTC_TIMESTAMP(6))", chunk.length)}`,
          params,
        );
      }
      const postingRows = 1000;
      for (let i = 0; i < postings.length; i += postingRows) {
        const chunk = postings.slice(i, i + postingRows);
        const params: SqlValue[] = [];
        for (const [term, id] of chunk) params.push(term, id.toString());
        await db.execute(`INSERT INTO chirp.search_postings (term, tweet_id) VALUES ${placeholders(chunk.length, 2)}`, params);
      }
    },
  };
}

function placeholders(rows: number, columns: number): string {
  return repeat(`(${new Array<string>(columns).fill("?").join(", ")})`, rows);
}

function repeat(group: string, times: number): string {
  return new Array<string>(times).fill(group).join(", ");
}

// LIMIT is written into the statement (MySQL 8.0.22+ refuses a bound LIMIT
// sent as a double); the value is an integer checked here, never client text.
function sqlLimit(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new RangeError(`bad limit ${n}`);
  return n;
}
