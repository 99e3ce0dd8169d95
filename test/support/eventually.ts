// The one way tests wait for something the system does asynchronously: poll a
// check until it holds, or fail naming what did not happen and what was last seen
// (instead of the whole test timing out with no clue). Waits are generous: these
// are not speed checks, those live in bench/.
import { setTimeout as delay } from "node:timers/promises";

/** What a check returns while the awaited thing has not happened yet. */
export type NotYet = undefined | null | false;

export interface EventuallyOptions {
  /** How long to keep trying before failing; default 10 s. */
  readonly timeoutMs?: number;
  /** Pause between attempts; default 50 ms. */
  readonly intervalMs?: number;
}

/**
 * Calls `check` until it returns something other than undefined, null or false and
 * resolves with that value. A check that throws counts as "not yet". After
 * `timeoutMs` it rejects with an error naming `what` and the last value or error
 * seen. A check still running two seconds past the deadline is abandoned, so a
 * hung call fails the wait instead of hanging the test.
 */
export async function eventually<T>(what: string, check: () => T | NotYet | Promise<T | NotYet>, opts: EventuallyOptions = {}): Promise<Exclude<T, NotYet>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = performance.now() + timeoutMs;
  let last: Seen = { none: true };
  let hung = false;
  for (;;) {
    const attempt = await settle(Promise.resolve().then(check), deadline - performance.now() + HUNG_CHECK_GRACE_MS);
    if ("value" in attempt && attempt.value !== undefined && attempt.value !== null && attempt.value !== false) return attempt.value as Exclude<T, NotYet>;
    if ("hung" in attempt) {
      hung = true;
      break;
    }
    last = attempt;
    const left = deadline - performance.now();
    if (left <= 0) break;
    await delay(Math.min(intervalMs, left));
  }
  const seen = [...("none" in last ? [] : [`last ${describeSeen(last)}`]), ...(hung ? ["a check was still running"] : [])];
  throw new Error(`${what}: not within ${timeoutMs} ms (${seen.join("; ")})`);
}

/** `promise`, or a rejection naming `what` if it has not settled within `ms`. */
export async function withTimeout<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  const outcome = await settle(promise, ms);
  if ("hung" in outcome) throw new Error(`${what}: not within ${ms} ms`);
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}

/** A check may run this long past the deadline (a slow last check still reports) before it counts as hung. */
const HUNG_CHECK_GRACE_MS = 2_000;

type Seen = { none: true } | { value: unknown } | { error: unknown };

/** How `promise` ended, or `hung` if it had not within `ms`. */
async function settle<T>(promise: Promise<T>, ms: number): Promise<{ value: T } | { error: unknown } | { hung: true }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      new Promise<{ hung: true }>((resolve) => (timer = setTimeout(() => resolve({ hung: true }), Math.max(ms, 0)))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function describeSeen(last: { value: unknown } | { error: unknown }): string {
  if ("error" in last) return `error: ${last.error instanceof Error ? last.error.message : String(last.error)}`;
  let shown: string;
  try {
    shown = JSON.stringify(last.value, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? String(last.value);
  } catch {
    shown = String(last.value);
  }
  return `value: ${shown.length > 300 ? `${shown.slice(0, 300)}...` : shown}`;
}
