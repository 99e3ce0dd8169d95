// Group commit for the index consumer: tweets to index are queued per shard,
// and each shard has at most one transaction in flight. Whatever arrives while
// it runs goes into the next one, up to maxBatch tweets. At a low rate every
// tweet gets its own transaction at once (no added wait); under load the
// commits, and the semi-synchronous replication wait of each, are shared.
// With `lingerMs` (CHIRP_SEARCH_INDEX_LINGER_MS), the first tweet of an idle
// shard waits that long for others, so that a moderate rate shares them too.
import type { ShardInfo } from "../../lib/shard/types.js";
import type { IndexResult, IndexedDoc, SearchStore } from "./store.js";

export interface IndexWriter {
  /** Resolves once the tweet's batch has committed (or with "exists"); rejects if that transaction failed. */
  index(doc: IndexedDoc): Promise<IndexResult>;
}

interface Pending {
  readonly doc: IndexedDoc;
  readonly resolve: (r: IndexResult) => void;
  readonly reject: (err: unknown) => void;
}

export function createIndexWriter(store: SearchStore, opts: { readonly maxBatch?: number; readonly lingerMs?: number } = {}): IndexWriter {
  const maxBatch = opts.maxBatch ?? 64;
  const lingerMs = Math.max(0, opts.lingerMs ?? 0);
  const queues = new Map<string, { shard: ShardInfo; waiting: Pending[]; busy: boolean }>();

  const drain = async (q: { shard: ShardInfo; waiting: Pending[]; busy: boolean }): Promise<void> => {
    q.busy = true;
    try {
      while (q.waiting.length > 0) {
        const batch = q.waiting.splice(0, maxBatch);
        try {
          const results = await store.indexTweets(
            q.shard,
            batch.map((p) => p.doc),
          );
          batch.forEach((p, i) => p.resolve(results[i]!));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      q.busy = false;
    }
  };

  return {
    index: (doc) =>
      new Promise<IndexResult>((resolve, reject) => {
        const shard = store.shardOf(doc.tweetId);
        let q = queues.get(shard.name);
        if (q === undefined) {
          q = { shard, waiting: [], busy: false };
          queues.set(shard.name, q);
        }
        q.waiting.push({ doc, resolve, reject });
        if (q.busy) return;
        if (lingerMs === 0) {
          void drain(q);
          return;
        }
        // Busy while it lingers: what arrives meanwhile goes in the same transaction.
        q.busy = true;
        const lingering = q;
        setTimeout(() => void drain(lingering), lingerMs);
      }),
  };
}
