import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";
import type { ReplicaSetInfo, ShardInfo } from "./types.js";

/**
 * The live topology of a keyspace: which member of each replica set is the
 * primary right now. It starts as the shard config plus the member addresses
 * and changes on failover. The topology manager publishes it in a JetStream KV
 * bucket; every process holding a shard router watches it and switches pools
 * without a restart.
 */
export interface LiveTopology {
  readonly keyspace: string;
  /** Bumped on every change; a consumer ignores any document older than the one it has. */
  readonly epoch: number;
  readonly replicaSets: readonly ReplicaSetInfo[];
  readonly shards: readonly ShardInfo[];
  /**
   * Splits in progress (decision 23): their targets are in `shards` marked
   * `serving: false` until writes switch; lib/shard/resharding.ts says how
   * routers route by them. Absent when nothing is being resharded.
   */
  readonly resharding?: readonly ReshardingEntry[];
  /** ISO time of the change, for operators. */
  readonly updateTime: string;
}

/** One split of a source shard into targets that tile it, and which side serves reads and writes. */
export interface ReshardingEntry {
  readonly source: string;
  readonly targets: readonly string[];
  readonly reads: "source" | "targets";
  /** "held": routers hold writes of the range until the next document. */
  readonly writes: "source" | "held" | "targets";
}

export const TOPOLOGY_BUCKET = "chirp_topology";

export function topologyKey(keyspace: string): string {
  return `keyspace.${keyspace}`;
}

/**
 * What the topology manager knows of every member it watches, beyond the
 * topology's primary and replicas: a member refused for errant transactions,
 * one being rebuilt, one down. Published in the same bucket under
 * `members.<keyspace>` whenever it changes, for `chirp topology`.
 */
export interface MemberStatusReport {
  readonly updateTime: string;
  /** By replica set, then member name. */
  readonly replicaSets: Record<string, Record<string, { readonly status: MemberStatus; readonly detail?: string; readonly since: string }>>;
}

export type MemberStatus = "primary" | "replica" | "down" | "not replicating" | "refused" | "rebuilding";

export function memberStatusKey(keyspace: string): string {
  return `members.${keyspace}`;
}

export async function readMemberStatus(kv: KV, keyspace: string): Promise<MemberStatusReport | undefined> {
  const entry = await kv.get(memberStatusKey(keyspace));
  if (entry === null || entry.operation !== "PUT" || entry.length === 0) return undefined;
  return JSON.parse(entry.string()) as MemberStatusReport;
}

export class StaleTopologyError extends Error {
  override readonly name = "StaleTopologyError";
  constructor(readonly published: number, readonly current: number) {
    super(`topology epoch ${published} is not newer than the published epoch ${current}`);
  }
}

/** Opens (creating if needed) the topology bucket. History lets operators see past failovers. */
export function openTopologyKv(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(TOPOLOGY_BUCKET, { history: 20 });
}

export async function readTopology(kv: KV, keyspace: string): Promise<{ topology: LiveTopology; revision: number } | undefined> {
  const entry = await kv.get(topologyKey(keyspace));
  if (entry === null || entry.operation !== "PUT" || entry.length === 0) return undefined;
  return { topology: parseTopology(entry.string()), revision: entry.revision };
}

/**
 * Publishes `next` only if its epoch is newer than the published one, with a
 * compare-and-set on the KV revision so two publishers cannot both win.
 */
export async function publishTopology(kv: KV, next: LiveTopology): Promise<number> {
  const key = topologyKey(next.keyspace);
  const current = await readTopology(kv, next.keyspace);
  const data = JSON.stringify(next);
  if (current === undefined) return kv.create(key, data);
  if (current.topology.epoch >= next.epoch) throw new StaleTopologyError(next.epoch, current.topology.epoch);
  return kv.update(key, data, current.revision);
}

/**
 * Calls `onChange` with the current document (if any) and then every newer
 * one, until `stop()`. Documents whose epoch is not newer are skipped; one
 * that cannot be parsed goes to `onError` and is skipped too.
 */
export async function watchTopology(
  kv: KV,
  keyspace: string,
  onChange: (topology: LiveTopology) => void,
  onError: (err: unknown) => void,
): Promise<{ stop(): void }> {
  const watcher = await kv.watch({ key: topologyKey(keyspace) });
  let epoch = -1;
  void (async () => {
    for await (const entry of watcher) {
      if (entry.operation !== "PUT" || entry.length === 0) continue;
      let topology: LiveTopology;
      try {
        topology = parseTopology(entry.string());
      } catch (err) {
        onError(err);
        continue;
      }
      if (topology.epoch <= epoch) continue;
      epoch = topology.epoch;
      onChange(topology);
    }
  })().catch(onError);
  return { stop: () => watcher.stop() };
}

export function parseTopology(text: string): LiveTopology {
  const v = JSON.parse(text) as Partial<LiveTopology>;
  if (
    typeof v.keyspace !== "string" ||
    typeof v.epoch !== "number" ||
    !Array.isArray(v.replicaSets) ||
    !Array.isArray(v.shards) ||
    v.replicaSets.some((rs) => typeof rs?.primary?.host !== "string" || typeof rs.primary.port !== "number") ||
    (v.resharding !== undefined &&
      (!Array.isArray(v.resharding) ||
        v.resharding.some((e) => typeof e?.source !== "string" || !Array.isArray(e.targets) || !["source", "targets"].includes(e.reads) || !["source", "held", "targets"].includes(e.writes))))
  ) {
    throw new Error("not a topology document");
  }
  return v as LiveTopology;
}
