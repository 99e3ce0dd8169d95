// What a missing replica can have acknowledged (decision 24). With two
// replicas one ack is enough, so a write may sit in the relay log of a
// replica that is not there when its primary dies. Everything a member
// received was in the primary's binlog before the member stopped receiving,
// so the first primary binlog position read after that (with the primary
// counting no more semi-sync clients than the members seen receiving, so the
// missing one was not still acknowledging unseen) contains it: its cover. A
// failover promotes a candidate only if what it received reaches the cover of
// every member it cannot freeze.
import { gtidPosReaches, type Gtid } from "../../lib/shard/gtid.js";

export interface LostMember {
  /** Date.now() when it was first seen not receiving from the primary. */
  readonly since: number;
  /** The primary's position read after `since`; undefined until there is such a reading. */
  readonly cover: Gtid[] | undefined;
}

/** One reading of the primary's state. */
export interface PrimaryReading {
  /** Date.now() when it was read. */
  readonly readAt: number;
  readonly binlogPos: Gtid[];
  /** Rpl_semi_sync_master_clients. */
  readonly semiSyncClients: number;
}

/**
 * The lost members after one evaluation: `receiving` are the members seen
 * replicating from the primary (dropped from the map), `others` the rest
 * (added with `now`, or given their cover once a fitting reading exists).
 */
export function trackLost(
  lost: ReadonlyMap<string, LostMember>,
  receiving: readonly string[],
  others: readonly string[],
  primary: PrimaryReading,
  now: number,
): Map<string, LostMember> {
  const next = new Map<string, LostMember>();
  for (const name of others) {
    if (receiving.includes(name)) continue;
    const entry = lost.get(name);
    if (entry === undefined) next.set(name, { since: now, cover: undefined });
    else if (entry.cover === undefined && primary.readAt > entry.since && primary.semiSyncClients <= receiving.length) {
      next.set(name, { since: entry.since, cover: primary.binlogPos });
    } else next.set(name, entry);
  }
  return next;
}

/**
 * The members whose acknowledged writes a candidate that received `received`
 * may lack: of `covers` (every member but the old primary, with its cover or
 * undefined), those not frozen as candidates whose cover it does not reach.
 */
export function uncovered(covers: ReadonlyMap<string, readonly Gtid[] | undefined>, frozen: readonly string[], received: readonly Gtid[]): string[] {
  return [...covers]
    .filter(([name, cover]) => !frozen.includes(name) && (cover === undefined || !gtidPosReaches(received, cover)))
    .map(([name]) => name);
}
