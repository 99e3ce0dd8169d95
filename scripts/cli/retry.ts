// Calls to a busy or failing-over system, as the CLI makes them.
import { Code, ConnectError } from "@connectrpc/connect";

const RETRYABLE = new Set([Code.Unavailable, Code.ResourceExhausted, Code.Aborted, Code.DeadlineExceeded]);

/**
 * Retries what a busy or failing-over system answers, with backoff; anything
 * else is final. `onRetryable` hears of every retryable failure (the last one
 * too, before it is thrown).
 */
export async function withRetry<T>(call: () => Promise<T>, onRetryable?: () => void, attempts = 6): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (!RETRYABLE.has(ConnectError.from(err).code)) throw err;
      onRetryable?.();
      if (i >= attempts) throw err;
      await sleep(50 * 2 ** i);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
