// One page of tweet ids from the whole index: the same query on every shard
// at once, each under a deadline, merged newest first. A shard that fails or
// does not answer in time is named in the result instead of failing the
// search: the caller reports the page as partial.
import type { Logger } from "../../lib/logger.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import type { Hit, ShardQuery, SearchStore } from "./store.js";

export interface FanOutResult {
  /** Newest first, at most `limit`. */
  readonly hits: readonly Hit[];
  /** More matches exist below the last id (among the shards that answered). */
  readonly hasMore: boolean;
  /** Shards (by name) that failed or missed the deadline. */
  readonly unavailable: readonly string[];
}

export interface FanOutOptions {
  readonly router: ShardRouter;
  readonly store: SearchStore;
  /** How long each shard may take. */
  readonly timeoutMs: number;
  readonly log?: Logger;
  /** Called per shard with its outcome and time (metrics). */
  readonly observe?: (shard: string, result: "ok" | "error" | "timeout", seconds: number) => void;
}

class ShardTimeoutError extends Error {
  override readonly name = "ShardTimeoutError";
}

export async function searchAllShards(opts: FanOutOptions, query: ShardQuery): Promise<FanOutResult> {
  const shards = opts.router.shards();
  // One more than asked from each shard: the merged top `limit + 1` is within
  // the union of every shard's top `limit + 1`, and the extra one says
  // whether there is a next page.
  const perShard = { ...query, limit: query.limit + 1 };
  const settled = await Promise.all(
    shards.map(async (shard) => {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        const hits = await Promise.race([
          opts.store.searchShard(shard, perShard),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new ShardTimeoutError(`shard ${shard.name} did not answer in ${opts.timeoutMs} ms`)), opts.timeoutMs);
          }),
        ]);
        opts.observe?.(shard.name, "ok", (performance.now() - started) / 1000);
        return { shard: shard.name, hits };
      } catch (err) {
        const timeout = err instanceof ShardTimeoutError;
        opts.observe?.(shard.name, timeout ? "timeout" : "error", (performance.now() - started) / 1000);
        opts.log?.warn({ shard: shard.name, err: timeout ? err.message : err }, "search shard unavailable; answering without it");
        return { shard: shard.name, hits: undefined };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const unavailable: string[] = [];
  const merged: Hit[] = [];
  for (const s of settled) {
    if (s.hits === undefined) unavailable.push(s.shard);
    else merged.push(...s.hits);
  }
  // A tweet's rows live on one shard, so there are no duplicates to drop.
  merged.sort((a, b) => (a.tweetId > b.tweetId ? -1 : a.tweetId < b.tweetId ? 1 : 0));
  return { hits: merged.slice(0, query.limit), hasMore: merged.length > query.limit, unavailable };
}
