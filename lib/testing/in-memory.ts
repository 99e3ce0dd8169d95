// Helpers for route handlers tested in memory (no servers): a shard router
// that only routes, and the Connect code a call ends with.
import { Code, ConnectError } from "@connectrpc/connect";
import type { ShardInfo } from "../shard/types.js";
import type { ShardRef, ShardRouter } from "../shard/router.js";
import { hashVindex } from "../shard/vindex.js";

/** Two shards split by the hash vindex, as a two-shard keyspace would be. */
export const MEMORY_SHARDS: readonly ShardInfo[] = [
  { name: "-80", replicaSet: "rs0", database: "chirp_-80" },
  { name: "80-", replicaSet: "rs1", database: "chirp_80-" },
];

/**
 * The router's routing over MEMORY_SHARDS (shardForUser, byShard with shards
 * in keyrange order and items in input order, scatter) and nothing else: the
 * stores under test are in memory too.
 */
export function memoryShardRouter(): ShardRouter {
  const shardForUser = (id: bigint | string): ShardInfo => MEMORY_SHARDS[hashVindex(id)[0]! < 0x80 ? 0 : 1]!;
  const resolve = (ref: ShardRef): ShardInfo => (typeof ref === "string" ? MEMORY_SHARDS.find((s) => s.name === ref)! : ref);
  const byShard = <K>(items: Iterable<K>, shardOf: (item: K) => ShardRef): Map<string, { shard: ShardInfo; items: K[] }> => {
    const grouped = new Map<string, { shard: ShardInfo; items: K[] }>(MEMORY_SHARDS.map((s) => [s.name, { shard: s, items: [] }]));
    for (const item of items) grouped.get(resolve(shardOf(item)).name)!.items.push(item);
    for (const [name, g] of grouped) if (g.items.length === 0) grouped.delete(name);
    return grouped;
  };
  return {
    shards: () => MEMORY_SHARDS,
    shardForUser,
    shardForKeyspaceId: (ksid: Uint8Array) => MEMORY_SHARDS[ksid[0]! < 0x80 ? 0 : 1]!,
    byShard,
    async scatter<K, R>(items: Iterable<K>, shardOf: (item: K) => ShardRef, run: (shard: ShardInfo, items: K[]) => Promise<readonly R[]>): Promise<R[]> {
      const groups = [...byShard(items, shardOf).values()];
      return (await Promise.all(groups.map((g) => run(g.shard, g.items)))).flat();
    },
  } as Partial<ShardRouter> as ShardRouter;
}

/** The Connect code `p` rejects with; undefined when it resolves. */
/** The Connect code `fn` throws with, or undefined when it returns. */
export function thrownCode(fn: () => unknown): Code | undefined {
  try {
    fn();
  } catch (err) {
    return ConnectError.from(err).code;
  }
  return undefined;
}

export async function codeOf(p: Promise<unknown>): Promise<Code | undefined> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  return undefined;
}
