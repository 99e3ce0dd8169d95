import { hostname } from "node:os";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

/**
 * Snowflake node ids that no two live processes share: each process leases
 * one in a JetStream KV bucket. A lease is a key `node.<n>` that its holder
 * rewrites every `ttlMs / 3`; the bucket's max age (`ttlMs`) expires it when
 * the holder dies, and a clean shutdown deletes it at once.
 *
 * A holder that cannot renew in time stops minting ids (`lost` resolves),
 * because another process may take the number after it expired.
 */
export const NODE_ID_BUCKET = "chirp_node_ids";

export interface NodeIdLease {
  readonly nodeId: number;
  /** Resolves if the lease was lost (renewal failed past its expiry). */
  readonly lost: Promise<Error>;
  release(): Promise<void>;
}

export interface NodeIdOptions {
  /** How many node ids exist (10 bits: 1024). */
  readonly size?: number;
  /** Lease lifetime without renewal. */
  readonly ttlMs?: number;
  /** Who holds it, for operators reading the bucket. */
  readonly owner: string;
}

export class NodeIdsExhaustedError extends Error {
  override readonly name = "NodeIdsExhaustedError";
}

export async function openNodeIdBucket(nc: NatsConnection, ttlMs = 15_000): Promise<KV> {
  return new Kvm(nc).create(NODE_ID_BUCKET, { history: 1, ttl: ttlMs });
}

export async function leaseNodeId(kv: KV, options: NodeIdOptions): Promise<NodeIdLease> {
  const size = options.size ?? 1024;
  const ttlMs = options.ttlMs ?? 15_000;
  const value = JSON.stringify({ owner: options.owner, host: hostname(), pid: process.pid });
  // Start at a random number so processes starting together rarely collide.
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const nodeId = (start + i) % size;
    const key = `node.${nodeId}`;
    let revision: number;
    try {
      revision = await kv.create(key, value);
    } catch {
      continue; // held by a live process
    }
    return holdLease(kv, key, nodeId, value, revision, ttlMs);
  }
  throw new NodeIdsExhaustedError(`all ${size} node ids are leased`);
}

function holdLease(kv: KV, key: string, nodeId: number, value: string, first: number, ttlMs: number): NodeIdLease {
  let revision = first;
  let renewedAt = Date.now();
  let released = false;
  let onLost: (err: Error) => void = () => {};
  const lost = new Promise<Error>((resolve) => {
    onLost = resolve;
  });
  const timer = setInterval(() => {
    kv.update(key, value, revision).then(
      (next) => {
        revision = next;
        renewedAt = Date.now();
      },
      (err: unknown) => {
        // A failed renewal is retried on the next tick; past the lease's
        // lifetime, someone else may hold the number, so give it up.
        if (!released && Date.now() - renewedAt >= ttlMs * 0.9) {
          clearInterval(timer);
          onLost(err instanceof Error ? err : new Error(String(err)));
        }
      },
    );
  }, Math.max(100, Math.floor(ttlMs / 3)));
  timer.unref();
  return {
    nodeId,
    lost,
    async release() {
      released = true;
      clearInterval(timer);
      await kv.delete(key, { previousSeq: revision }).catch(() => {});
    },
  };
}
