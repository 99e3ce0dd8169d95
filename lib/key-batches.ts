// Work for one key at a time, with what arrives meanwhile done together.
//
// A hot row (a tweet everyone is liking) takes its changes one transaction
// at a time, each holding the row's lock for a few round trips and a
// semi-sync commit: 100 likers at once wait in line for seconds, long enough
// for the pool to give up on the last ones. Here the first change of a key
// runs at once, alone; changes that arrive while it runs wait, and run next
// as one batch (one transaction, one lock, one commit), in arrival order. A
// batch adds no wait to a key nobody else is changing, and under a storm the
// batches grow with the queue, so the row is locked a few times instead of
// once per change.
//
// Each item gets its own result; a batch that fails fails all its items with
// the same error (each caller sees its change not done, and may retry).
//
// With `lingerMs`, the first item of an idle key waits that long for others
// before its batch runs: for background work (an event's consumer), where a
// few tens of milliseconds are invisible and a moderate rate (a post every
// 10-20 ms) would otherwise give every item a transaction of its own, since
// each one finds the key idle.

/** Runs one batch: the items of one key, in arrival order; one result per item, in the same order. */
export type RunBatch<K, I, O> = (key: K, items: readonly I[]) => Promise<readonly O[]>;

export interface KeyBatchesOptions {
  /** The most items in one batch (the rest wait for the next); default 64. */
  readonly maxBatch?: number;
  /** How long the first item of an idle key waits for others before its batch runs; default 0 (at once). */
  readonly lingerMs?: number;
}

interface Waiting<I, O> {
  readonly item: I;
  readonly resolve: (out: O) => void;
  readonly reject: (err: unknown) => void;
}

/** `submit(key, item)` resolves with the item's result once the batch that carried it has run. */
export function keyBatches<K, I, O>(run: RunBatch<K, I, O>, options: KeyBatchesOptions = {}): (key: K, item: I) => Promise<O> {
  const maxBatch = Math.max(1, options.maxBatch ?? 64);
  const lingerMs = Math.max(0, options.lingerMs ?? 0);
  /** Keys with a batch running, and what waits behind it (often nothing). */
  const busy = new Map<K, Waiting<I, O>[]>();

  const runFrom = (key: K, batch: Waiting<I, O>[]): void => {
    let results: Promise<readonly O[]>;
    try {
      results = run(key, batch.map((w) => w.item));
    } catch (err) {
      results = Promise.reject(err);
    }
    results
      .then(
        (outs) => {
          if (outs.length !== batch.length) throw new Error(`a batch of ${batch.length} gave ${outs.length} results`);
          batch.forEach((w, i) => w.resolve(outs[i]!));
        },
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .catch((err: unknown) => batch.forEach((w) => w.reject(err)))
      .finally(() => {
        const waiting = busy.get(key)!;
        if (waiting.length === 0) {
          busy.delete(key);
          return;
        }
        runFrom(key, waiting.splice(0, maxBatch));
      });
  };

  return (key, item) =>
    new Promise<O>((resolve, reject) => {
      const waiting = busy.get(key);
      if (waiting !== undefined) {
        waiting.push({ item, resolve, reject });
        return;
      }
      if (lingerMs > 0) {
        // The key is busy while it lingers: what arrives meanwhile joins this batch.
        const gathered: Waiting<I, O>[] = [{ item, resolve, reject }];
        busy.set(key, gathered);
        setTimeout(() => runFrom(key, gathered.splice(0, maxBatch)), lingerMs);
        return;
      }
      busy.set(key, []);
      runFrom(key, [{ item, resolve, reject }]);
    });
}
