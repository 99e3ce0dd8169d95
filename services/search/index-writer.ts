// Group commit for the index consumer: tweets to index are queued per shard,
// and each shard has at most one transaction in flight. Whatever arrives while
// it runs goes into the next one, up to maxBatch tweets (lib/key-batches.ts,
// keyed by the shard). At a low rate every tweet gets its own transaction at
// once (no added wait); under load the commits, and the semi-synchronous
// replication wait of each, are shared. With `lingerMs`
// (CHIRP_SEARCH_INDEX_LINGER_MS), the first tweet of an idle shard waits that
// long for others, so that a moderate rate shares them too.
import { keyBatches } from "../../lib/key-batches.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import type { IndexResult, IndexedDoc, SearchStore } from "./store.js";

export interface IndexWriter {
  /** Resolves once the tweet's batch has committed (or with "exists"); rejects if that transaction failed. */
  index(doc: IndexedDoc): Promise<IndexResult>;
}

export function createIndexWriter(store: SearchStore, opts: { readonly maxBatch?: number; readonly lingerMs?: number } = {}): IndexWriter {
  const onShard = keyBatches<string, { readonly shard: ShardInfo; readonly doc: IndexedDoc }, IndexResult>(
    (_name, items) =>
      store.indexTweets(
        items[0]!.shard,
        items.map((i) => i.doc),
      ),
    { maxBatch: opts.maxBatch ?? 64, lingerMs: opts.lingerMs ?? 0 },
  );
  return {
    index: (doc) => {
      const shard = store.shardOf(doc.tweetId);
      return onShard(shard.name, { shard, doc });
    },
  };
}
