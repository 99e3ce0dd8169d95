// MariaDB GTID positions and binlog states as values: parse, compare, find
// errant transactions. Pure code, shared by the local cluster (which member
// starts as primary) and the topology manager (failover candidate, rejoin).
//
// A MariaDB GTID is domain-server-seq. `@@gtid_binlog_pos` holds the last GTID
// per domain; `@@gtid_binlog_state` the last GTID per (domain, server) pair,
// which is what tells whether one member's history is contained in another's.
// With gtid_strict_mode on every member and unique server ids, the
// transactions a server originated form a gap-free prefix on every member that
// has them, so "(d, s) up to seq n" describes a set.

export interface Gtid {
  readonly domain: number;
  readonly server: number;
  readonly seq: bigint;
}

/** A GTID list as MariaDB prints it: "0-101-55,0-102-60" ("" is empty). */
export function parseGtidList(text: string | null | undefined): Gtid[] {
  const out: Gtid[] = [];
  for (const part of (text ?? "").split(",")) {
    const t = part.trim();
    if (t === "") continue;
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(t);
    if (!m) throw new Error(`bad GTID ${JSON.stringify(t)}`);
    out.push({ domain: Number(m[1]), server: Number(m[2]), seq: BigInt(m[3] ?? "0") });
  }
  return out;
}

export function formatGtidList(list: readonly Gtid[]): string {
  return list.map(formatGtid).join(",");
}

export function formatGtid(g: Gtid): string {
  return `${g.domain}-${g.server}-${g.seq}`;
}

/**
 * Entries of `member`'s binlog state that `reference`'s state does not cover:
 * transactions the member has and the reference never saw. Empty means the
 * member's history is a prefix of the reference's (it can replicate from it).
 */
export function errantGtids(member: readonly Gtid[], reference: readonly Gtid[]): Gtid[] {
  return member.filter((g) => {
    const ref = reference.find((r) => r.domain === g.domain && r.server === g.server);
    return ref === undefined || ref.seq < g.seq;
  });
}

/** Whether state `a` is contained in state `b` (binlog states, see errantGtids). */
export function gtidStateContains(b: readonly Gtid[], a: readonly Gtid[]): boolean {
  return errantGtids(a, b).length === 0;
}

/**
 * Whether position `target` (last GTID per domain, e.g. a relay log's
 * Gtid_IO_Pos) is reached by position `pos`: per domain, seq at least as high.
 */
export function gtidPosReaches(pos: readonly Gtid[], target: readonly Gtid[]): boolean {
  return target.every((t) => {
    const p = pos.find((x) => x.domain === t.domain);
    return p !== undefined && p.seq >= t.seq;
  });
}

/**
 * Whether a replica that has applied `applied` (its @@gtid_slave_pos) holds
 * everything a primary at `primary` (its @@gtid_binlog_pos) had committed: per
 * domain of the primary's, the same originating server and a sequence number at
 * least as high. Stricter than gtidPosReaches on purpose: a replica whose last
 * GTID in a domain came from another server (a diverged member, a primary the
 * reader does not know of yet) is not taken as current; its lag is left to the
 * heartbeat, which can only say "older", never "newer" than the truth.
 */
export function gtidPosCurrent(applied: readonly Gtid[], primary: readonly Gtid[]): boolean {
  return primary.every((p) => {
    const a = applied.find((x) => x.domain === p.domain);
    return a !== undefined && a.server === p.server && a.seq >= p.seq;
  });
}

/** Orders positions (last GTID per domain) by how far they reach: >0 when a is further. */
export function compareGtidPos(a: readonly Gtid[], b: readonly Gtid[]): number {
  const aReachesB = gtidPosReaches(a, b);
  const bReachesA = gtidPosReaches(b, a);
  if (aReachesB && !bReachesA) return 1;
  if (bReachesA && !aReachesB) return -1;
  if (aReachesB && bReachesA) return 0;
  // Incomparable (different domains ahead): the one further in total.
  const sum = (l: readonly Gtid[]): bigint => l.reduce((n, g) => n + g.seq, 0n);
  const d = sum(a) - sum(b);
  return d > 0n ? 1 : d < 0n ? -1 : 0;
}

/**
 * The highest sequence number a member had seen from *other* servers before
 * its own latest writes: roughly when it last took over as primary. Of two
 * diverged members, the one that took over later is the newer primary (it saw
 * the other's history up to that point; the other never saw its writes).
 */
export function takeoverSeq(state: readonly Gtid[], pos: readonly Gtid[]): bigint {
  let best = 0n;
  for (const last of pos) {
    for (const g of state) {
      if (g.domain === last.domain && g.server !== last.server && g.seq > best) best = g.seq;
    }
  }
  return best;
}

export interface StartupMemberView {
  readonly name: string;
  /** @@gtid_binlog_state */
  readonly state: readonly Gtid[];
  /** @@gtid_binlog_pos */
  readonly pos: readonly Gtid[];
  /** SHOW SLAVE STATUS names a master: it was a replica when it stopped. */
  readonly configuredReplica: boolean;
  /** Role in the shard config (used only when the servers cannot tell). */
  readonly configRole: "primary" | "replica";
}

export interface StartupRoles {
  readonly primary: string;
  readonly replicas: string[];
  /** Members whose history the primary does not contain: they must not replicate from it. */
  readonly divergent: { name: string; errant: Gtid[] }[];
  readonly reason: string;
}

/**
 * Which member of a replica set is the primary when the set starts, from the
 * members' own binlogs. The primary must contain every other member's history,
 * so a member is never pointed at one that is behind it; among equals the one
 * that was not replicating when it stopped (the primary last time) wins, then
 * the shard config's choice.
 */
export function chooseStartupPrimary(members: readonly StartupMemberView[]): StartupRoles {
  if (members.length === 0) throw new Error("no members");
  const preference = (a: StartupMemberView, b: StartupMemberView): number =>
    Number(a.configuredReplica) - Number(b.configuredReplica) ||
    Number(a.configRole !== "primary") - Number(b.configRole !== "primary") ||
    a.name.localeCompare(b.name);

  const fresh = members.every((m) => m.state.length === 0);
  const supersets = members.filter((m) => members.every((o) => gtidStateContains(m.state, o.state)));
  let primary: StartupMemberView;
  let reason: string;
  if (fresh) {
    primary = [...members].sort((a, b) => Number(a.configRole !== "primary") - Number(b.configRole !== "primary") || a.name.localeCompare(b.name))[0]!;
    reason = "no binlog history yet: the shard config's primary";
  } else if (supersets.length > 0) {
    primary = [...supersets].sort(preference)[0]!;
    reason =
      supersets.length === 1
        ? "the only member whose binlog contains every other member's"
        : primary.configuredReplica
          ? "up to date with the others; the shard config's choice"
          : "up to date with the others and not replicating when it stopped";
  } else {
    // Diverged histories: the member that took over last is the newer primary.
    primary = [...members].sort((a, b) => {
      const d = takeoverSeq(b.state, b.pos) - takeoverSeq(a.state, a.pos);
      return d > 0n ? 1 : d < 0n ? -1 : preference(a, b);
    })[0]!;
    reason = "histories diverged: the member that took over as primary last";
  }
  const replicas: string[] = [];
  const divergent: { name: string; errant: Gtid[] }[] = [];
  for (const m of members) {
    if (m === primary) continue;
    const errant = errantGtids(m.state, primary.state);
    if (errant.length === 0) replicas.push(m.name);
    else divergent.push({ name: m.name, errant });
  }
  return { primary: primary.name, replicas, divergent, reason };
}
