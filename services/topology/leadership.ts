// Which topology manager acts (issue 22: "the manager is never alone").
// Several run; one leads through a lease in a JetStream KV bucket whose max
// age is the lease's lifetime: the leader holds the key `leader.<keyspace>`
// and rewrites it (compare-and-set on its revision) every third of the TTL;
// a standby creates the key as soon as it is gone (the leader stopped, or
// stopped renewing and the server expired it). The leader acts only while
// its last renewal is younger than LEASE_SAFETY of the TTL (mayAct), by its
// own monotonic clock: an ex-leader that was paused (SIGSTOP, a long GC)
// wakes up past that and does nothing until it has renewed, which fails
// because the key is someone else's; it then steps down. Topology writes
// are a compare-and-set on the KV revision besides (lib/shard/topology.ts),
// so even a step taken in the instant before would not publish over the new
// leader's epoch.
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

export const LEADER_BUCKET = "chirp_topology_leader";
/** A leader acts only while its last renewal is younger than this share of the TTL. */
const LEASE_SAFETY = 0.6;

export interface Leadership {
  readonly owner: string;
  /** Whether this manager may act now (it holds the lease, renewed recently enough). */
  mayAct(): boolean;
  /** Resolves when the lease is lost (renewal refused, or failing past the safety window). */
  readonly lost: Promise<Error>;
  /** Gives the lease up (the key is deleted), so a standby takes over at once. */
  release(): Promise<void>;
  /** Stops renewing without giving the lease up, as a killed process would (tests). */
  abandon(): void;
}

export function leaderKey(keyspace: string): string {
  return `leader.${keyspace}`;
}

/**
 * The lease bucket, its max age set to `ttlMs`. Opening an existing bucket
 * keeps the max age it was created with, so a changed lease is written back:
 * a key that expired sooner than its holder believes would let a standby lead
 * while the old leader still acts.
 */
export async function openLeaderBucket(nc: NatsConnection, ttlMs: number): Promise<KV> {
  const kv = await new Kvm(nc).create(LEADER_BUCKET, { history: 1, ttl: ttlMs });
  const jsm = await jetstreamManager(nc);
  const stream = `KV_${LEADER_BUCKET}`;
  const info = await jsm.streams.info(stream);
  const maxAge = ttlMs * 1_000_000; // nanoseconds
  if (info.config.max_age !== maxAge) await jsm.streams.update(stream, { ...info.config, max_age: maxAge });
  return kv;
}

/** Who holds the lease now, if anyone. */
export async function currentLeader(kv: KV, keyspace: string): Promise<string | undefined> {
  const e = await kv.get(leaderKey(keyspace));
  return e === null || e.operation !== "PUT" ? undefined : e.string();
}

/**
 * Waits until this manager holds the lease (`onWaiting` hears who leads
 * meanwhile, whenever that changes), then keeps it.
 */
export async function acquireLeadership(opts: {
  readonly kv: KV;
  readonly keyspace: string;
  readonly owner: string;
  readonly ttlMs: number;
  readonly signal?: AbortSignal;
  readonly onWaiting?: (leader: string | undefined) => void;
}): Promise<Leadership> {
  const key = leaderKey(opts.keyspace);
  let lastSeen: string | undefined | null = null;
  for (;;) {
    if (opts.signal?.aborted) throw new Error("stopped while waiting for the leadership");
    try {
      const revision = await opts.kv.create(key, opts.owner);
      return hold(opts.kv, key, opts.owner, revision, opts.ttlMs);
    } catch {
      const leader = await currentLeader(opts.kv, opts.keyspace).catch(() => undefined);
      if (leader !== lastSeen) opts.onWaiting?.(leader);
      lastSeen = leader;
      // A tenth of the lease: a standby takes over at most that long after the key expired.
      await new Promise((resolve) => setTimeout(resolve, Math.max(50, Math.floor(opts.ttlMs / 10))));
    }
  }
}

function hold(kv: KV, key: string, owner: string, first: number, ttlMs: number): Leadership {
  let revision = first;
  let renewedAt = performance.now();
  let done = false;
  let onLost: (err: Error) => void = () => {};
  const lost = new Promise<Error>((resolve) => (onLost = resolve));
  const lose = (err: Error): void => {
    if (done) return;
    done = true;
    clearInterval(timer);
    onLost(err);
  };
  const timer = setInterval(() => {
    // Woken after a pause longer than the lease: someone else may lead; renewing would only fail.
    if (performance.now() - renewedAt > ttlMs) {
      lose(new Error(`the lease lapsed: not renewed for ${Math.round(performance.now() - renewedAt)} ms`));
      return;
    }
    kv.update(key, owner, revision).then(
      (next) => {
        revision = next;
        renewedAt = performance.now();
      },
      (err: unknown) => {
        // A refused compare-and-set: another manager holds the key now.
        if (/wrong last sequence/i.test(String((err as Error).message))) lose(new Error(`another manager took the lease: ${(err as Error).message}`));
        else if (performance.now() - renewedAt > ttlMs * LEASE_SAFETY) lose(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }, Math.max(50, Math.floor(ttlMs / 3)));
  timer.unref();
  return {
    owner,
    lost,
    mayAct: () => !done && performance.now() - renewedAt < ttlMs * LEASE_SAFETY,
    async release() {
      if (done) return;
      lose(new Error("released"));
      await kv.delete(key, { previousSeq: revision }).catch(() => {});
    },
    abandon() {
      done = true;
      clearInterval(timer);
    },
  };
}
