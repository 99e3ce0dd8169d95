// The live topology document the manager publishes: its replica sets as it
// sees them now, and the shards of the document it replaces. A reshard
// publishes new shards and `resharding` entries into the same document
// (decision 23); a failover must carry them over, not rebuild the ring from the
// shard config (which seeds a keyspace that has no document yet).
import type { KV } from "@nats-io/kv";
import type { Logger } from "../../lib/logger.js";
import { watchTopology, type LiveTopology } from "../../lib/shard/topology.js";
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

/**
 * The databases whose heartbeat the manager writes on a replica set: the
 * serving shards of the live document (what routers read and probe; a split's
 * targets from its write switch on, decision 23), or the shard config's when
 * there is no document yet. Non-serving targets are left out: an abort drops
 * their databases, and one missing database fails the set's whole beat.
 */
export function heartbeatDatabases(replicaSet: string, live: LiveTopology | undefined, configShards: readonly ShardInfo[]): string[] {
  const shards = live?.shards ?? configShards;
  return [...new Set(shards.filter((s) => s.replicaSet === replicaSet && s.serving !== false).map((s) => s.database))];
}

/**
 * The live document as the KV holds it now, followed (a reshard publishes
 * without the manager): the manager's heartbeats go where routers look
 * without a restart after a split.
 */
export class LiveDocument {
  #current: LiveTopology | undefined;
  #watch: { stop(): void } | undefined;

  constructor(
    private readonly kv: KV,
    private readonly keyspace: string,
    private readonly log: Logger,
  ) {}

  get current(): LiveTopology | undefined {
    return this.#current;
  }

  /** A document this process published or read: kept unless the followed one is newer. */
  saw(t: LiveTopology): void {
    if (this.#current === undefined || t.epoch > this.#current.epoch) this.#current = t;
  }

  async follow(): Promise<void> {
    this.#watch ??= await watchTopology(
      this.kv,
      this.keyspace,
      (t) => this.saw(t),
      (err) => this.log.warn({ err }, "ignored an unreadable topology document"),
    );
  }

  stop(): void {
    this.#watch?.stop();
    this.#watch = undefined;
  }
}
