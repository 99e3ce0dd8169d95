// What a topology document's `resharding` entries mean for routing (decision 23).
//
//   reads: "source"   the ring holds the source; the targets (serving: false) are
//                     reachable by name only, for the workflow and operators.
//   reads: "targets"  the ring holds the targets instead of the source, so
//                     shardForUser names the targets; but reader(target) and
//                     primary(target) both run on the *source* database while
//                     writes are "source" or "held": the targets are current
//                     only while the reshard command's catch-up runs, the
//                     source always is, so reads never go stale if the command
//                     dies. shards() (what walkers iterate) then lists one name
//                     per database: the split's first target stands for the
//                     source, so a walk visits the source once.
//   writes: "held"    primary() of a target (or of the source) waits for the
//                     next document, then resolves again.
//
// Computed once per topology document, so a statement pays one map lookup, as
// before.
import type { LiveTopology, ReshardingEntry } from "./topology.js";
import type { ShardInfo } from "./types.js";

export interface RoutingLayout {
  /** The shards the ring is built from (tiles the keyspace). */
  readonly ring: readonly ShardInfo[];
  /** Where primary() and reader() of a shard name run: itself, or the source while a split's writes have not switched. */
  readonly writeShards: ReadonlyMap<string, ShardInfo>;
  /** Names whose writes are held by this document (targets and source of `writes: "held"` entries). */
  readonly held: ReadonlySet<string>;
  /** Problems with the entries (unknown shards, a source that is not serving). */
  readonly problems: readonly string[];
}

const NONE: ReadonlySet<string> = new Set();

export function routingLayout(t: LiveTopology): RoutingLayout {
  const byName = new Map(t.shards.map((s) => [s.name, s]));
  const writeShards = new Map<string, ShardInfo>(t.shards.map((s) => [s.name, s]));
  const entries = t.resharding ?? [];
  const problems: string[] = [];
  const leaving = new Set<string>();
  const joining: ShardInfo[] = [];
  let held: Set<string> | undefined;
  for (const e of entries) {
    const source = byName.get(e.source);
    const targets = e.targets.map((n) => byName.get(n));
    if (source === undefined) problems.push(`resharding: source shard ${e.source} is not in the topology`);
    targets.forEach((s, i) => s === undefined && problems.push(`resharding: target shard ${e.targets[i]} is not in the topology`));
    if (source === undefined || targets.some((s) => s === undefined)) continue;
    if (e.reads === "targets") {
      leaving.add(source.name);
      joining.push(...(targets as ShardInfo[]));
    }
    if (e.writes !== "targets") for (const target of targets as ShardInfo[]) writeShards.set(target.name, { name: target.name, replicaSet: source.replicaSet, database: source.database });
    if (e.writes === "held") {
      held ??= new Set();
      held.add(source.name);
      for (const n of e.targets) held.add(n);
    }
  }
  const ring = [...t.shards.filter((s) => s.serving !== false && !leaving.has(s.name)), ...joining];
  return { ring, writeShards, held: held ?? NONE, problems };
}

/**
 * What shards() lists to walkers: the ring (in keyrange order) as `writeShards`
 * resolves it, skipping a shard whose database an earlier one already reaches
 * (a split's second target while its writes have not switched).
 */
export function distinctDatabases(ring: readonly ShardInfo[], writeShards: ReadonlyMap<string, ShardInfo>): ShardInfo[] {
  const seen = new Set<string>();
  const out: ShardInfo[] = [];
  for (const s of ring) {
    const where = writeShards.get(s.name) ?? s;
    const key = `${where.replicaSet}/${where.database}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(where);
  }
  return out;
}

/** `entry` with its phase changed; the document's other entries unchanged. */
export function withResharding(t: LiveTopology, source: string, change: Partial<Pick<ReshardingEntry, "reads" | "writes">> | undefined): ReshardingEntry[] | undefined {
  const rest = (t.resharding ?? []).filter((e) => e.source !== source);
  const current = (t.resharding ?? []).find((e) => e.source === source);
  if (change === undefined || current === undefined) return rest.length === 0 ? undefined : rest;
  return [...rest, { ...current, ...change }];
}
