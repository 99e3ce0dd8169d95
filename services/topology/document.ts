// The live topology document the manager publishes: its replica sets as it
// sees them now, and the shards of the document it replaces. A reshard
// publishes new shards and `resharding` entries into the same document
// (decision 23); a failover must carry them over, not rebuild the ring from the
// shard config (which seeds a keyspace that has no document yet).
import type { LiveTopology } from "../../lib/shard/topology.js";
import type { ReplicaSetInfo, ShardInfo } from "../../lib/shard/types.js";

export function nextTopology(opts: {
  readonly keyspace: string;
  readonly epoch: number;
  readonly replicaSets: ReplicaSetInfo[];
  /** The document being replaced, if the KV has one. */
  readonly current: LiveTopology | undefined;
  /** The shard config's shards. */
  readonly configShards: readonly ShardInfo[];
  readonly now?: Date;
}): LiveTopology {
  const { current } = opts;
  return {
    keyspace: opts.keyspace,
    epoch: opts.epoch,
    replicaSets: opts.replicaSets,
    shards: current?.shards ?? opts.configShards.map((s) => ({ name: s.name, replicaSet: s.replicaSet, database: s.database })),
    ...(current?.resharding === undefined ? {} : { resharding: current.resharding }),
    updateTime: (opts.now ?? new Date()).toISOString(),
  };
}
