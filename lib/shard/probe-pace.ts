// When the shard router probes its members (primary ping, replica lag): every
// busyMs while statements flow; every idleMs once none has been routed for
// idleAfterMs; and at once for the first statement after an idle spell, so a
// busy router sees lag within busyMs and an idle one costs its databases
// almost nothing. Background statements (a relay's poll, a sweep: the
// router's `background` option) are not traffic and do not count here.
export class ProbePace {
  private lastRouted: number;
  private lastTick = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly busyMs: number,
    private readonly idleMs: number,
    private readonly idleAfterMs: number,
    now: number,
  ) {
    this.lastRouted = now;
  }

  /** A statement of traffic was routed; true when a probe round should run at once (the first after idleness). */
  routed(now: number): boolean {
    const wasIdle = now - this.lastRouted > this.idleAfterMs;
    this.lastRouted = now;
    return wasIdle && now - this.lastTick >= this.busyMs;
  }

  /** Asked every busyMs: whether a probe round is due. */
  due(now: number): boolean {
    const idle = now - this.lastRouted > this.idleAfterMs;
    return !idle || now - this.lastTick >= this.idleMs;
  }

  /** A probe round started. */
  ticked(now: number): void {
    this.lastTick = now;
  }
}
