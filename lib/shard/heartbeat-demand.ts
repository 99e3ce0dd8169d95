// Heartbeats on demand (decision 20), the routers' side and the wire. The
// topology manager writes heartbeat rows only while some router asks for them:
// a router asks when a probe round found a replica it could not show current
// from GTID positions alone (writes are flowing), so an idle system writes no
// heartbeats. The ask is a core NATS message (not stored: a nudge, like the
// relay's wake) on `chirp_heartbeat_demand.<keyspace>`; the manager keeps
// writing for its on-demand window after the last one. A lost ask only means a
// replica serves no reads until the next one arrives; no read is ever staler
// for it, because a heartbeat's age is an upper bound however old it is.
import type { NatsConnection } from "@nats-io/transport-node";

/** Subject of the asks for a keyspace's heartbeats. */
export function heartbeatDemandSubject(keyspace: string): string {
  return `chirp_heartbeat_demand.${keyspace}`;
}

/** How often a router that still needs heartbeats asks again. The manager's window must be longer. */
export const DEMAND_EVERY_MS = 1000;

/** Publishes an ask; never throws (a closed or reconnecting connection drops it). */
export function requestHeartbeats(nc: NatsConnection, keyspace: string): void {
  try {
    nc.publish(heartbeatDemandSubject(keyspace));
  } catch {
    // Asked again within DEMAND_EVERY_MS while still needed.
  }
}

/** At most one ask per `everyMs` while a router needs heartbeats. */
export class DemandPace {
  private last = Number.NEGATIVE_INFINITY;

  constructor(private readonly everyMs: number = DEMAND_EVERY_MS) {}

  /** A probe round needed heartbeats at `now`: true when an ask should go out. */
  needed(now: number): boolean {
    if (now - this.last < this.everyMs) return false;
    this.last = now;
    return true;
  }
}
