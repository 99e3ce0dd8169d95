// What a topology document's `resharding` entries mean for routing (decision 23).
//
//   reads: "source"   the ring holds the source; the targets (serving: false) are
//                     reachable by name only, for the workflow and operators.
//   reads: "targets"  the ring holds the targets instead of the source, so
//                     shardForUser/shards() name the targets; reader(target)
//                     reads the target's database; primary(target) writes the
//                     *source* database while writes are "source" or "held".
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
  /** Where primary() of a shard name writes: itself, or the source while a split's writes have not switched. */
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

/** `entry` with its phase changed; the document's other entries unchanged. */
export function withResharding(t: LiveTopology, source: string, change: Partial<Pick<ReshardingEntry, "reads" | "writes">> | undefined): ReshardingEntry[] | undefined {
  const rest = (t.resharding ?? []).filter((e) => e.source !== source);
  const current = (t.resharding ?? []).find((e) => e.source === source);
  if (change === undefined || current === undefined) return rest.length === 0 ? undefined : rest;
  return [...rest, { ...current, ...change }];
}
