// How often the manager writes heartbeats and reads members' state (decision
// 20). Both slow down while nothing needs them and come back at once when
// something does, so an idle system costs its databases little, and a busy or
// troubled one is watched as closely as before.

/**
 * Heartbeats on demand, like Vitess's --heartbeat_on_demand_duration: written
 * for `windowMs` after the last router's ask (heartbeat-demand.ts), none
 * otherwise. A window of 0 writes them all the time.
 */
export class HeartbeatDemand {
  private until = Number.NEGATIVE_INFINITY;

  constructor(private readonly windowMs: number) {}

  /** A router asked at `now`. True when heartbeats were not being written: beat at once. */
  requested(now: number): boolean {
    const was = this.wanted(now);
    this.until = Math.max(this.until, now + this.windowMs);
    return !was;
  }

  /** Whether a router wants heartbeats at `now`. */
  wanted(now: number): boolean {
    return this.windowMs === 0 || now < this.until;
  }
}

/**
 * The state-read pace of one replica set: every `quietMs` while nothing
 * changes (no member's state differs from its previous reading, so no writes,
 * not even heartbeats, reach the primary) and nothing is wrong; every
 * `activeMs` otherwise. Trouble (a member down or not replicating from the
 * primary, semi-sync off, a failover or rejoin under way) also has every
 * member's state read at once when it begins. A set starts troubled (nothing
 * is known yet).
 */
export class StatePace {
  private troubled = true;
  private quiet = false;

  constructor(
    private readonly quietMs: number,
    private readonly activeMs: number,
  ) {}

  /**
   * Records how the set looks after a probe round. True when trouble has just
   * begun: every member's state should be read at the next probe, not up to
   * quietMs later (a failover decision reads the replicas' view).
   */
  observe(view: { readonly troubled: boolean; readonly changed: boolean }): boolean {
    const began = view.troubled && !this.troubled;
    this.troubled = view.troubled;
    this.quiet = !view.troubled && !view.changed;
    return began;
  }

  get isTroubled(): boolean {
    return this.troubled;
  }

  /** How often each member's state is read now. */
  get stateMs(): number {
    return this.quiet ? this.quietMs : this.activeMs;
  }
}
