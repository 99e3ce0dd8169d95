import { hostname } from "node:os";
import { performance } from "node:perf_hooks";
import { Code, ConnectError } from "@connectrpc/connect";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { createIdGenerator, type IdGenerator } from "./ids.js";

/**
 * Snowflake node ids that no two live processes share: each process leases
 * one in a JetStream KV bucket. A lease is a key `node.<n>` that its holder
 * rewrites every `ttlMs / 3`; the bucket's max age (`ttlMs`) expires it when
 * the holder dies, and a clean shutdown deletes it at once.
 *
 * A holder that cannot renew in time stops minting ids (`lost` resolves),
 * because another process may take the number after it expired. It judges
 * that by its own monotonic clock from the moment it sent its last renewal
 * that succeeded (`fresh()`), not only when a renewal fails: a renewal still
 * pending at the expiry (NATS unreachable) must not leave it minting.
 */
export const NODE_ID_BUCKET = "chirp_node_leases";

/**
 * Long enough that a process keeps minting through a NATS outage of up to
 * 90 % of this (9 minutes: posting must not depend on NATS, events wait in
 * the outbox), short enough that a crashed process's number comes back
 * soon (1,024 numbers: a crash costs one for 10 minutes). Was 2 minutes,
 * which failed every post after about 108 s of NATS down.
 */
export const DEFAULT_LEASE_TTL_MS = 600_000;
/** A holder renews this often at most (and every third of a shorter lease), so it is current again soon after an outage. */
const RENEW_EVERY_MS = 10_000;
/** A holder mints only while its last renewal is younger than this share of the lease. */
const LEASE_SAFETY = 0.9;

export interface NodeIdLease {
  readonly nodeId: number;
  /** Resolves if the lease was lost (renewal failed past its expiry). */
  readonly lost: Promise<Error>;
  /** Whether ids may be minted now: the last successful renewal was sent less than 90 % of the lease ago. */
  fresh(): boolean;
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

/**
 * The lease bucket. An existing one keeps the max age it was made with, so a
 * longer lease asked for now raises it (a key then lives longer than its
 * holder counts on: safe). It is never lowered: holders that leased under
 * the longer age would mint past their key's expiry.
 */
export async function openNodeIdBucket(nc: NatsConnection, ttlMs = DEFAULT_LEASE_TTL_MS): Promise<KV> {
  const kv = await new Kvm(nc).create(NODE_ID_BUCKET, { history: 1, ttl: ttlMs });
  const jsm = await jetstreamManager(nc);
  const stream = `KV_${NODE_ID_BUCKET}`;
  const info = await jsm.streams.info(stream);
  const maxAge = ttlMs * 1_000_000; // nanoseconds
  if (info.config.max_age > 0 && info.config.max_age < maxAge) await jsm.streams.update(stream, { ...info.config, max_age: maxAge });
  return kv;
}

export async function leaseNodeId(kv: KV, options: NodeIdOptions): Promise<NodeIdLease> {
  const size = options.size ?? 1024;
  // The bucket's own max age is what expires a lease, whatever we asked for
  // when it was first made: never count on a longer one.
  const bucketTtl = (await kv.status()).ttl;
  const ttlMs = Math.min(options.ttlMs ?? DEFAULT_LEASE_TTL_MS, bucketTtl > 0 ? bucketTtl : Number.POSITIVE_INFINITY);
  const value = JSON.stringify({ owner: options.owner, host: hostname(), pid: process.pid });
  // Start at a random number so processes starting together rarely collide.
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < size; i++) {
    const nodeId = (start + i) % size;
    const key = `node.${nodeId}`;
    let revision: number;
    // Before the call: the key's age is counted from when the server stored it, which is later.
    const sentAt = performance.now();
    try {
      revision = await kv.create(key, value);
    } catch {
      continue; // held by a live process
    }
    return holdLease(kv, key, nodeId, value, revision, ttlMs, sentAt);
  }
  throw new NodeIdsExhaustedError(`all ${size} node ids are leased`);
}

function holdLease(kv: KV, key: string, nodeId: number, value: string, first: number, ttlMs: number, createdAt: number): NodeIdLease {
  let revision = first;
  /** performance.now() when the last renewal that succeeded was sent. */
  let renewedAt = createdAt;
  let released = false;
  let gone = false;
  let pending = false;
  let onLost: (err: Error) => void = () => {};
  const lost = new Promise<Error>((resolve) => {
    onLost = resolve;
  });
  const lose = (err: Error): void => {
    if (gone) return;
    gone = true;
    clearInterval(timer);
    onLost(err);
  };
  const fresh = (): boolean => !gone && !released && performance.now() - renewedAt < ttlMs * LEASE_SAFETY;
  const timer = setInterval(() => {
    if (released || gone) return;
    // Past the safety share of the lease, someone else may hold the number soon: give it up,
    // whether or not a renewal is still pending (NATS unreachable).
    if (!fresh()) return lose(new Error(`the node id lease was not renewed for ${Math.round(performance.now() - renewedAt)} ms`));
    if (pending) return;
    pending = true;
    const sentAt = performance.now();
    kv.update(key, value, revision).then(
      (next) => {
        pending = false;
        revision = next;
        renewedAt = sentAt;
      },
      (err: unknown) => {
        pending = false;
        // Another holder's revision: the key expired and was taken. Else retried on the next tick.
        if (/wrong last sequence/i.test(String((err as Error).message))) lose(err as Error);
      },
    );
  }, Math.max(100, Math.min(RENEW_EVERY_MS, Math.floor(ttlMs / 3))));
  timer.unref();
  return {
    nodeId,
    lost,
    fresh,
    async release() {
      released = true;
      clearInterval(timer);
      await kv.delete(key, { previousSeq: revision }).catch(() => {});
    },
  };
}

/**
 * The id generator of a service process: it leases a node number over the
 * event bus's NATS connection in the background, and until it holds one (or
 * after losing it) `next()` answers Unavailable instead of risking a
 * duplicate. A lost lease is replaced by a fresh one.
 */
export function createLeasedIdGenerator(opts: {
  readonly bus: { ready(signal?: AbortSignal): Promise<{ nc: NatsConnection }> } | undefined;
  readonly owner: string;
  readonly log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  readonly ttlMs?: number;
}): IdGenerator & { readonly nodeId: number | undefined; leased(timeoutMs: number): Promise<boolean>; close(): Promise<void> } {
  let generator: IdGenerator | undefined;
  let lease: NodeIdLease | undefined;
  const stopping = new AbortController();
  let markLeased!: () => void;
  const firstLease = new Promise<void>((resolve) => (markLeased = resolve));

  const acquire = async (): Promise<void> => {
    if (opts.bus === undefined) return;
    for (let attempt = 0; !stopping.signal.aborted; attempt++) {
      try {
        const { nc } = await opts.bus.ready(stopping.signal);
        const kv = await openNodeIdBucket(nc, opts.ttlMs);
        lease = await leaseNodeId(kv, { owner: opts.owner, ...(opts.ttlMs === undefined ? {} : { ttlMs: opts.ttlMs }) });
        generator = createIdGenerator(lease.nodeId);
        markLeased();
        opts.log.info({ node_id: lease.nodeId }, "leased snowflake node id");
        const err = await lease.lost;
        generator = undefined;
        if (stopping.signal.aborted) return;
        opts.log.error({ err: err.message, node_id: lease.nodeId }, "lost the snowflake node id lease; leasing another");
      } catch (err) {
        if (stopping.signal.aborted) return;
        opts.log.error({ err: err instanceof Error ? err.message : String(err) }, "cannot lease a snowflake node id yet");
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt)).unref());
      }
    }
  };
  void acquire();

  const minting = (): IdGenerator => {
    if (generator === undefined || lease?.fresh() !== true) {
      throw new ConnectError("cannot mint ids yet: no snowflake node id (is NATS reachable?)", Code.Unavailable);
    }
    return generator;
  };

  return {
    get nodeId() {
      return generator === undefined ? undefined : lease?.nodeId;
    },
    /** Whether a node id is held, waiting up to `timeoutMs` for the first lease. */
    async leased(timeoutMs) {
      if (generator !== undefined) return true;
      if (opts.bus === undefined) return false;
      let timer: NodeJS.Timeout | undefined;
      const held = await Promise.race([
        firstLease.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
      ]);
      clearTimeout(timer);
      return held && generator !== undefined;
    },
    next() {
      return minting().next();
    },
    at(timeMs) {
      return minting().at(timeMs);
    },
    async close() {
      stopping.abort();
      generator = undefined;
      await lease?.release();
    },
  };
}
