/** Resolves after `ms`, or at once (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Exponential back-off with jitter: min doubling per attempt (0-based) up to max, then a random 50-100 % of it. */
export function backoffMs(attempt: number, minMs: number, maxMs: number): number {
  const ms = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return ms / 2 + Math.random() * (ms / 2);
}
