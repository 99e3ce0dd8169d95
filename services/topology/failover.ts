// Failover of one replica set whose primary is down, and the rejoin of a
// member as a replica of the current primary. The manager (manager.ts)
// decides when; these functions do the steps, log each decision, and report.
import type { MemberAddress, MysqlCredentials } from "../../lib/shard/types.js";
import type { Logger } from "../../lib/logger.js";
import { compareGtidPos, errantGtids, formatGtidList, type Gtid } from "../../lib/shard/gtid.js";
import { uncovered } from "./covers.js";
import {
  fence,
  isReplicatingFrom,
  pointAt,
  promote,
  setSemiSyncMaster,
  waitApplied,
  type MemberState,
} from "../../lib/shard/replication.js";
import type { MemberProbe } from "./monitor.js";
import { freezeRelayLog } from "./silence.js";

export interface FailoverContext {
  readonly log: Logger;
  readonly admin: MysqlCredentials;
  readonly repl: MysqlCredentials;
  readonly probeTimeoutMs: number;
  readonly applyTimeoutMs: number;
  /**
   * Whether this manager may still change anything (it holds a fresh lease:
   * leadership.ts). Asked before each step that changes a server, so a leader
   * paused in the middle of a failover (SIGSTOP, a long GC) stops at the next
   * step once it wakes, instead of finishing what a new leader has taken over.
   */
  readonly mayAct?: () => boolean;
}

/** Throws FailoverAborted unless this manager still leads (FailoverContext.mayAct). */
function stillLeading(ctx: FailoverContext, rs: string, step: string): void {
  if (ctx.mayAct !== undefined && !ctx.mayAct()) throw new FailoverAborted(`${rs}: no longer the leader (lease lapsed or lost) before ${step}`);
}

/** What the primary's semi-sync looked like before it died, as far as the probes saw. */
export interface SemiSyncHistory {
  /** Last probe said Rpl_semi_sync_master_status=ON. */
  readonly lastActive: boolean | undefined;
  /** The count of fallbacks to async grew while we watched (Rpl_semi_sync_master_no_times). */
  readonly fellBackSinceWatched: boolean;
  readonly lastClients: number | undefined;
}

export interface FailoverReport {
  readonly replicaSet: string;
  readonly oldPrimary: string;
  readonly newPrimary: string;
  /** Date.now() of the first failed probe of the old primary. */
  readonly firstFailureAt: number;
  /** First failed probe -> failover decided. */
  readonly detectMs: number;
  /** The fence attempt (alongside the apply when every candidate had lost the old primary). */
  readonly fenceMs: number;
  /** Candidate frozen and its relay log applied. */
  readonly applyMs: number;
  readonly promoteMs: number;
  /** Filled in by the manager once the topology is in the KV. */
  publishMs: number;
  totalMs: number;
  epoch: number;
  readonly oldPrimaryFenced: boolean;
  /** The frozen Gtid_IO_Pos the new primary applied before taking writes. */
  readonly appliedUpTo: string;
  /** True when semi-sync may have been async, so acknowledged writes may be missing. */
  readonly mayHaveLostWrites: boolean;
}

/**
 * Every member of the replica set but the old primary, each with the first
 * primary position read after it stopped receiving from it: all that member
 * can have acknowledged lies within that position. undefined while it was
 * receiving (as far as the manager saw) or no such reading exists.
 */
export type MemberCovers = ReadonlyMap<string, readonly Gtid[] | undefined>;

export class FailoverAborted extends Error {
  override readonly name = "FailoverAborted";
}

/**
 * Steps, in this order:
 * 1. fence the old primary if it answers (read_only first: a commit still
 *    waiting for its ack gets it from the replica, which is still connected);
 *    if it does not answer, the caller remembers to fence it on its return;
 * 2. freeze every candidate's relay log (STOP SLAVE IO_THREAD) and take the
 *    one that received the most (Gtid_IO_Pos): with AFTER_SYNC every
 *    acknowledged commit is in the relay log of a replica that acked it;
 * 3. wait until it has applied all of it (MASTER_GTID_WAIT, bounded);
 * 4. promote it; point the other candidates at it.
 */
export async function failover(
  ctx: FailoverContext,
  old: MemberProbe,
  candidates: readonly MemberProbe[],
  semiSync: SemiSyncHistory,
  covers: MemberCovers = new Map(),
): Promise<FailoverReport> {
  const rs = old.replicaSet;
  const log = ctx.log.child({ replica_set: rs, old_primary: old.name });
  const decidedAt = Date.now();
  const firstFailureAt = old.firstFailureAt ?? decidedAt;
  const mayHaveLostWrites = semiSync.lastActive !== true || semiSync.fellBackSinceWatched || (semiSync.lastClients ?? 0) === 0;
  if (mayHaveLostWrites) {
    log.error(
      { semi_sync: semiSync },
      "SEMI-SYNC WAS NOT PROTECTING THE OLD PRIMARY'S COMMITS (fell back to async or had no replica): writes it acknowledged may be missing on the new primary",
    );
  }

  // Nothing to promote: leave the old primary alone (it may come back as it was).
  if (candidates.length === 0) throw new FailoverAborted(`${rs}: no reachable replica to promote`);

  // 1. Fence. It goes first, so that a commit still waiting there for its
  // ack gets it from a replica that is still connected. When the old primary
  // misses its probes and every candidate has lost it too, no commit there
  // can get an ack from them any more, so the attempt (bounded by the probe
  // timeout, which a frozen member uses up) runs alongside step 2 instead.
  let fenced = false;
  let fencedAt = decidedAt;
  const fencing = (async () => {
    try {
      const killed = await old.withAdmin((c) => fence(c, ctx.admin.user, 5_000, () => old.connect()), ctx.probeTimeoutMs);
      fenced = true;
      log.warn({ killed_connections: killed }, "old primary answered: fenced it (read_only, client connections closed)");
    } catch (err) {
      log.warn({ problem: (err as { code?: string }).code ?? String(err) }, "old primary unreachable: it will be fenced when it returns");
    }
    fencedAt = Date.now();
  })();
  const lostByAll = !old.up && candidates.every((p) => p.state?.slave === undefined || p.state.slave.ioRunning !== "Yes");
  if (!lostByAll) await fencing;

  // 2. Freeze and choose.
  stillLeading(ctx, rs, "freezing the candidates");
  const freezeAt = Date.now();
  // All at once: STOP SLAVE IO_THREAD on a semi-sync replica waits for its
  // connection to the old primary that ends the dump thread there, which a
  // frozen primary never answers (cut to 1 s: silence.ts), and one after
  // another those waits would add up. The manager has usually stopped them
  // already, on the replicas' silence (silence.ts): then this is a no-op.
  const frozen: { probe: MemberProbe; state: MemberState; ioPos: Gtid[] }[] = [];
  await Promise.all(
    candidates.map(async (p) => {
      try {
        const state = await p.withAdmin(async (c) => {
          await freezeRelayLog(c);
          return p.refresh();
        });
        frozen.push({ probe: p, state, ioPos: state.slave?.gtidIoPos ?? state.binlogPos });
      } catch (err) {
        log.warn({ candidate: p.name, problem: (err as { code?: string }).code ?? String(err) }, "candidate unreachable; skipped");
      }
    }),
  );
  if (frozen.length === 0) throw new FailoverAborted(`${rs}: no reachable replica to promote`);
  frozen.sort((a, b) => compareGtidPos(b.ioPos, a.ioPos) || a.probe.name.localeCompare(b.probe.name));
  const chosen = frozen[0]!;
  const target = formatGtidList(chosen.ioPos);
  log.info(
    {
      candidate: chosen.probe.name,
      received_up_to: target,
      others: frozen.slice(1).map((f) => ({ name: f.probe.name, received_up_to: formatGtidList(f.ioPos) })),
    },
    "chose the replica that received the most of the old primary's binlog",
  );

  // With several replicas one ack is enough, so a write may have been
  // acknowledged by a member that is not here. Promote only a candidate that
  // received everything such a member can have acked: the primary's position
  // read after it stopped receiving (decision 24). Else wait for it to return.
  const missing = uncovered(
    covers,
    frozen.map((f) => f.probe.name),
    chosen.ioPos,
  );
  if (missing.length > 0) {
    await fencing;
    // Each one's cover, or why there is none: which of the two held the failover up.
    const why = missing.map((name) => {
      const cover = covers.get(name);
      return cover === undefined ? `${name}: no cover (seen receiving until the primary died, or no primary reading since it stopped that bounds it)` : `${name}'s cover: ${formatGtidList(cover)}`;
    });
    throw new FailoverAborted(
      `${rs}: ${missing.join(", ")} may hold acknowledged writes that ${chosen.probe.name} lacks (received up to ${target}; ${why.join("; ")}); waiting for ${missing.length > 1 ? "them" : "it"} to return`,
    );
  }

  await fencing;

  // 3. Apply everything it received.
  const applied = await chosen.probe.withAdmin((c) => waitApplied(c, target, ctx.applyTimeoutMs));
  if (!applied) {
    // Leave the candidates frozen: their relay logs are the evidence. The next
    // attempt freezes them again (a no-op) and waits anew.
    throw new FailoverAborted(`${rs}: ${chosen.probe.name} did not apply its relay log up to ${target} within ${ctx.applyTimeoutMs} ms`);
  }
  const appliedAt = Date.now();
  const chosenState = await chosen.probe.refresh();

  // 4. Promote, then re-point the others at it.
  const others = frozen.slice(1);
  // Semi-sync on even with no other replica here: commits then wait for one to
  // return (the routers answer Unavailable past their commit bound) rather than
  // be acknowledged from this member alone (decision 24).
  stillLeading(ctx, rs, `promoting ${chosen.probe.name}`);
  await chosen.probe.withAdmin((c) => promote(c, { semiSync: true }));
  const promotedAt = Date.now();
  // Its state as a primary from now on (a probe read from before the promotion must not be taken for it).
  await chosen.probe.refresh().catch(() => undefined);
  log.warn(
    { new_primary: chosen.probe.name, applied_up_to: target, replicas: others.length },
    others.length > 0 ? "promoted" : "promoted; no other replica here, so commits wait until a replica rejoins",
  );
  for (const o of others) {
    const errant = errantGtids(o.state.binlogState, chosenState.binlogState);
    if (errant.length > 0) {
      log.error({ member: o.probe.name, errant: formatGtidList(errant) }, "replica has transactions the new primary lacks; left stopped");
      continue;
    }
    await o.probe.withAdmin((c) => pointAt(c, chosen.probe.address, ctx.repl)).catch((err: unknown) =>
      log.warn({ member: o.probe.name, err }, "could not re-point replica; the monitor retries"),
    );
  }

  return {
    replicaSet: rs,
    oldPrimary: old.name,
    newPrimary: chosen.probe.name,
    firstFailureAt,
    detectMs: decidedAt - firstFailureAt,
    fenceMs: fencedAt - decidedAt,
    applyMs: appliedAt - freezeAt,
    promoteMs: promotedAt - appliedAt,
    publishMs: 0,
    totalMs: promotedAt - firstFailureAt,
    epoch: 0,
    oldPrimaryFenced: fenced,
    appliedUpTo: target,
    mayHaveLostWrites,
  };
}

export type RejoinResult = "ok" | "refused" | "failed";

/**
 * Makes `member` a replica of `primary`: refuses when its binlog holds
 * transactions the primary lacks (errant GTIDs: it would fork the data),
 * fences it first if it is writable, then CHANGE MASTER ... slave_pos and
 * START SLAVE, and waits until both threads run.
 */
export async function rejoin(
  ctx: FailoverContext,
  member: MemberProbe,
  primary: MemberProbe,
): Promise<{ result: RejoinResult; errant?: string }> {
  const log = ctx.log.child({ replica_set: member.replicaSet, member: member.name, primary: primary.name });
  // The member first, then the primary: a primary read before the member could
  // lack what the member has since received from it, and that would look errant.
  const mine = await member.refresh();
  if (isReplicatingFrom(mine, primary.address) && mine.readOnly) {
    // Re-pointed meanwhile (a failover does that to the other replicas): nothing to do.
    return { result: "ok" };
  }
  const theirs = await primary.refresh();
  const errant = errantGtids(mine.binlogState, theirs.binlogState);
  if (errant.length > 0) {
    return { result: "refused", errant: formatGtidList(errant) };
  }
  stillLeading(ctx, member.replicaSet, `rejoining ${member.name}`);
  if (!mine.readOnly) {
    const killed = await member.withAdmin((c) => fence(c, ctx.admin.user, 5_000, () => member.connect()));
    log.warn({ killed_connections: killed }, "member was writable: fenced it before rejoining");
  }
  await member.withAdmin((c) => pointAt(c, primary.address, ctx.repl));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const s = await member.refresh();
    if (isReplicatingFrom(s, primary.address)) break;
    if (s.slave?.lastIoErrno === 1236) {
      // The primary says it cannot serve our position: diverged after all.
      await member.withAdmin((c) => c.query("STOP SLAVE"));
      return { result: "refused", errant: `primary refused the position: ${s.slave.lastIoError}` };
    }
    if (Date.now() > deadline) {
      log.error({ io: s.slave?.ioRunning, sql: s.slave?.sqlRunning, io_error: s.slave?.lastIoError, sql_error: s.slave?.lastSqlError }, "replication did not start");
      return { result: "failed" };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!theirs.semiSync.masterEnabled) {
    // A replica can ack again: the primary's commits wait for it from now on.
    await primary.withAdmin((c) => setSemiSyncMaster(c, true));
    log.info("semi-sync enabled on the primary again");
  }
  log.info({ from: formatGtidList(mine.binlogPos) }, "rejoined as a replica");
  return { result: "ok" };
}

export function sameAddress(a: MemberAddress, b: MemberAddress): boolean {
  return a.host === b.host && a.port === b.port;
}
