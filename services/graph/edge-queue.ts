/**
 * Runs tasks one after another per key, in arrival order; different keys run
 * in parallel. The graph service queues the changes of one edge here: they
 * would serialise on the edge's row lock anyway, but each would hold a pooled
 * connection while it waits, and a burst on one edge would starve every
 * other request of connections. Queued here, an edge holds at most one
 * connection per process.
 */
export interface KeyedQueue {
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  /** Keys with a task running or waiting. */
  readonly size: number;
}

export function createKeyedQueue(): KeyedQueue {
  const tails = new Map<string, Promise<unknown>>();
  return {
    run<T>(key: string, task: () => Promise<T>): Promise<T> {
      const before = tails.get(key) ?? Promise.resolve();
      const result = before.then(task, task);
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      tails.set(key, tail);
      void tail.then(() => {
        if (tails.get(key) === tail) tails.delete(key);
      });
      return result;
    },
    get size() {
      return tails.size;
    },
  };
}
