// The sign-up's claim lease: how a sign-up that holds nothing across members
// still cannot commit a user row whose claim has been taken over. Takeover
// needs a claim at least the grace old (by the claim shard's clock); the
// sign-up sends its user row's COMMIT within a window a good deal shorter,
// measured on its own monotonic clock from before its first claim was sent.
// docs/decisions/0007-claims-first-sign-up.md, has the argument and
// its assumptions.

/** The sign-up ran out of its window before its user row's COMMIT: nothing was written. */
export class LeaseExpiredError extends Error {
  override readonly name = "LeaseExpiredError";
  constructor(
    readonly elapsedMs: number,
    readonly windowMs: number,
  ) {
    super(`sign-up took ${Math.round(elapsedMs)} ms to reach its commit, more than its ${windowMs} ms window`);
  }
}

export interface ClaimLease {
  /** Milliseconds since the lease began (monotonic). */
  elapsedMs(): number;
  /** Throws LeaseExpiredError once the window is over: the COMMIT may not be sent any more. */
  check(): void;
}

/**
 * Starts a lease now. Call it before the first claim's INSERT is sent, so that
 * every claim the sign-up makes (or takes over) is younger than the lease.
 * `now` is a monotonic clock in milliseconds (performance.now by default):
 * wall-clock steps must not lengthen the window.
 */
export function startClaimLease(windowMs: number, now: () => number = () => performance.now()): ClaimLease {
  const start = now();
  const elapsedMs = (): number => now() - start;
  return {
    elapsedMs,
    check() {
      const elapsed = elapsedMs();
      if (!(elapsed <= windowMs)) throw new LeaseExpiredError(elapsed, windowMs);
    },
  };
}
