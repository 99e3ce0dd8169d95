// All of the timeline service's SQL: a read-only model over chirp.tweets, which
// the tweet service owns and writes. Tweets live on their author's shard, with
// the index tweets_by_author (author_id, id); every query here is a backward
// walk of that index for one author, so it reads no more rows than it returns
// (plus deleted ones, skipped). See docs/architecture.md, "Timelines".
import type { ShardInfo } from "../../lib/shard/types.js";
import type { ShardClient, ShardRouter, SqlValue } from "../../lib/shard/router.js";
import type { Entry } from "./entries.js";

/** Above every Snowflake id: "no upper bound". */
export const NO_CURSOR = 0xffff_ffff_ffff_ffffn;

/** What one author's walk asks for: live tweets with id < before, newest first, at most limit. */
export interface AuthorWalk {
  readonly authorId: bigint;
  readonly before: bigint;
  readonly limit: number;
}

export interface TimelineStore {
  shardOf(authorId: bigint): ShardInfo;
  /** One author's live tweets with id < before (and >= atLeast), newest first. */
  authorTweets(authorId: bigint, before: bigint, limit: number, opts?: { atLeast?: bigint; primary?: boolean }): Promise<bigint[]>;
  /**
   * Several authors' walks on one shard in one statement per chunk (UNION
   * ALL of per-author index walks); rows in no particular order.
   */
  walkAuthors(shard: ShardInfo, walks: readonly AuthorWalk[], primary: boolean): Promise<Entry[]>;
}

/** Authors per statement; the statement is padded to a power of two so few distinct texts get prepared. */
const CHUNK = 64;

export function createTimelineStore(router: ShardRouter): TimelineStore {
  const db = (shard: ShardInfo, primary: boolean): ShardClient => (primary ? router.primary(shard) : router.reader(shard));
  return {
    shardOf: (authorId) => router.shardForUser(authorId),

    async authorTweets(authorId, before, limit, opts = {}) {
      const shard = router.shardForUser(authorId);
      const rows = await db(shard, opts.primary ?? false).query<{ id: string }>(
        `SELECT id FROM chirp.tweets
         WHERE author_id = ? AND id < ? AND id >= ? AND delete_time IS NULL
         ORDER BY id DESC LIMIT ${sqlLimit(limit)}`,
        [authorId, before, opts.atLeast ?? 0n],
      );
      return rows.map((r) => BigInt(r.id));
    },

    async walkAuthors(shard, walks, primary) {
      const out: Entry[] = [];
      // One LIMIT per statement (it is written into the SQL): walks are grouped by limit.
      const byLimit = new Map<number, AuthorWalk[]>();
      for (const w of walks) {
        const group = byLimit.get(w.limit) ?? [];
        group.push(w);
        byLimit.set(w.limit, group);
      }
      const statements: Promise<void>[] = [];
      for (const [limit, group] of byLimit) {
        for (let i = 0; i < group.length; i += CHUNK) {
          const chunk = group.slice(i, i + CHUNK);
          statements.push(
            (async () => {
              const size = padTo(chunk.length);
              const part = `(SELECT id, author_id FROM chirp.tweets
                WHERE author_id = ? AND id < ? AND delete_time IS NULL ORDER BY id DESC LIMIT ${sqlLimit(limit)})`;
              const params: SqlValue[] = [];
              for (let j = 0; j < size; j++) {
                // Padding walks name author 0, which has no tweets.
                const w = chunk[j];
                params.push(w?.authorId ?? 0n, w?.before ?? 0n);
              }
              const rows = await db(shard, primary).query<{ id: string; author_id: string }>(Array(size).fill(part).join(" UNION ALL "), params);
              for (const r of rows) out.push({ id: BigInt(r.id), authorId: BigInt(r.author_id) });
            })(),
          );
        }
      }
      await Promise.all(statements);
      return out;
    },
  };
}

function padTo(n: number): number {
  let size = 1;
  while (size < n) size *= 2;
  return size;
}

// LIMIT is written into the statement (a bound LIMIT is refused by MySQL
// 8.0.22+ over the binary protocol when sent as a double). Checked integers only.
function sqlLimit(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new RangeError(`bad limit ${n}`);
  return n;
}
