// The outbox relay: publishes every shard's unsent outbox rows to JetStream
// and marks them sent.
//
//   const relay = startOutboxRelay({ router, bus, config: loadRelayConfig(env), log, metrics });
//   ...
//   await relay.stop();   // finishes the round in flight, releases its leases
//
// Per shard, on its primary: read up to batchSize unsent rows in id order,
// publish each with msgID = event_id and wait for the acks, then set
// sent_time on the acked ones. A full batch is followed at once by the next;
// otherwise the shard waits until a commit of outbox rows wakes it (a nudge
// over NATS from the writing process, outbox-wake.ts), or pollMs at most, the
// safety net for a nudge that was lost. A failed round (NATS away, the
// shard Unavailable) backs off that shard only and is retried from the rows
// still unsent, so a row is never skipped; one published twice (a crash
// between the ack and the UPDATE) is dropped by JetStream's duplicate window,
// and after that window reaches consumers twice (they are idempotent).
//
// One relay per shard at a time across processes: a lease per shard in a KV
// bucket (lease.ts). A relay without a shard's lease leaves it alone and tries
// to take it every leaseClaimMs. The lease is for efficiency and order, not
// for correctness: two relays publishing the same rows produce each event once.
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import type { PubAck } from "@nats-io/jetstream";
import type { Span } from "@opentelemetry/api";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { ShardClient, ShardRouter } from "../shard/router.js";
import type { BusConnection, EventBus } from "./bus.js";
import type { RelayConfig } from "./config.js";
import { ATTR, endMessageSpan, injectSpan, startPublishSpan } from "../tracing/tracing.js";
import { EVENT_ID_HEADER, REQUEST_ID_HEADER, USER_ID_HEADER } from "./headers.js";
import { createLease, openLeaseBucket, type Lease, type LeaseBucket } from "./lease.js";
import { eventMetrics, type EventMetrics } from "./metrics.js";
import { countUnsent, markSent, purgeSent, readUnsent, type OutboxRow } from "./outbox-store.js";
import { relayWakeSubject, shardOfWake } from "./outbox-wake.js";
import { backoffMs, sleep } from "./sleep.js";

/** The KV bucket of relay leases; a key per shard, `<keyspace>.<shard>`. */
export const RELAY_LEASE_BUCKET = "chirp_relay_leases";

export interface OutboxRelayOptions {
  readonly router: ShardRouter;
  readonly bus: EventBus;
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Default RELAY_LEASE_BUCKET; tests use their own (a bucket's max age is fixed by its creator). */
  readonly leaseBucket?: string;
  /** Shown as the lease holder; default host/pid/random. */
  readonly owner?: string;
  /** How often the shard list is compared with the topology's (resharding), default 5000 ms. */
  readonly shardsRefreshMs?: number;
}

export interface OutboxRelay {
  /** Shards whose lease this relay holds right now. */
  heldShards(): string[];
  /** Stops polling, lets rounds in flight finish, releases the leases (a successor takes over at once). */
  stop(): Promise<void>;
}

export function startOutboxRelay(opts: OutboxRelayOptions): OutboxRelay {
  const { router, bus, config } = opts;
  const log = opts.log.child({ component: "outbox-relay" });
  const m = opts.metrics === undefined ? undefined : eventMetrics(opts.metrics.registry);
  const bucketName = opts.leaseBucket ?? RELAY_LEASE_BUCKET;
  const owner = opts.owner ?? `${hostname()}/${process.pid}/${randomBytes(4).toString("hex")}`;
  const workers = new Map<string, ShardWorker>();
  let stopped = false;

  // The bucket handle belongs to a connection; a new connection opens it again.
  const buckets = new WeakMap<NatsConnection, Promise<LeaseBucket>>();
  const bucket = async (signal: AbortSignal): Promise<LeaseBucket> => {
    const { nc } = await bus.ready(signal);
    let opening = buckets.get(nc);
    if (opening === undefined) {
      opening = openLeaseBucket(nc, bucketName, config.leaseTtlMs).then((b) => {
        if (b.ttlMs !== config.leaseTtlMs) {
          log.warn({ bucket: bucketName, ttl_ms: b.ttlMs, configured_ms: config.leaseTtlMs }, "lease bucket has another max age; using it");
        }
        return b;
      });
      opening.catch(() => buckets.delete(nc));
      buckets.set(nc, opening);
    }
    return opening;
  };

  const refresh = (): void => {
    if (stopped) return;
    const names = new Set(router.shards().map((s) => s.name));
    for (const name of names) {
      if (workers.has(name)) continue;
      workers.set(name, new ShardWorker(name, { router, bus, config, log, metrics: m, bucket, owner, keyspace: router.keyspace }));
    }
    for (const [name, worker] of workers) {
      if (names.has(name)) continue;
      // The shard left the topology (a split or merge); its successors have their own workers.
      workers.delete(name);
      void worker.stop();
    }
  };
  refresh();
  const refreshTimer = setInterval(refresh, opts.shardsRefreshMs ?? 5000);
  refreshTimer.unref();

  // Nudges from the processes that commit outbox rows (outbox-wake.ts): the
  // shard is read at once instead of at its next poll. One subscription per
  // connection; the client keeps it across reconnects. Nudges sent while the
  // connection was away are lost, so every shard is read on (re)connecting:
  // the poll is then only the net for a writer that died between its commit
  // and its nudge.
  const wakes = new AbortController();
  const wakeAll = (): void => {
    for (const w of workers.values()) w.wake();
  };
  // One listener for the relay's life, not one per connection.
  const wakesStopped = new Promise<void>((resolve) => wakes.signal.addEventListener("abort", () => resolve(), { once: true }));
  const wakeLoop = (async () => {
    while (!wakes.signal.aborted) {
      try {
        const { nc } = await bus.ready(wakes.signal);
        const sub = nc.subscribe(relayWakeSubject(router.keyspace, "*"), {
          callback: (err, msg) => {
            if (err !== null) return;
            const shard = shardOfWake(msg.subject, router.keyspace);
            if (shard === undefined) return;
            if (!workers.has(shard)) {
              // A shard this relay has no worker for: the topology changed since the last refresh
              // (a split's write switch serves its targets). Refresh now rather than up to
              // shardsRefreshMs later; a name still unknown (a split's target read through its
              // source's database until the write switch) wakes every worker, the one reading it too.
              refresh();
              if (!workers.has(shard)) return wakeAll();
            }
            workers.get(shard)?.wake();
          },
        });
        wakeAll();
        void (async () => {
          for await (const s of nc.status()) if (s.type === "reconnect") wakeAll();
        })().catch(() => {});
        await Promise.race([nc.closed(), wakesStopped]);
        sub.unsubscribe();
      } catch {
        if (wakes.signal.aborted) return;
        await sleep(1000, wakes.signal).catch(() => {});
      }
    }
  })();
  log.info({ shards: [...workers.keys()], owner }, "outbox relay started");

  return {
    heldShards: () => [...workers.values()].filter((w) => w.lease.held()).map((w) => w.shard),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(refreshTimer);
      wakes.abort();
      await wakeLoop;
      await Promise.all([...workers.values()].map((w) => w.stop()));
      workers.clear();
      log.info("outbox relay stopped");
    },
  };
}

interface WorkerDeps {
  readonly router: ShardRouter;
  readonly bus: EventBus;
  readonly config: RelayConfig;
  readonly log: Logger;
  readonly metrics: EventMetrics | undefined;
  readonly bucket: (signal: AbortSignal) => Promise<LeaseBucket>;
  readonly owner: string;
  readonly keyspace: string;
}

class RoundError extends Error {
  override readonly name = "RoundError";
  constructor(
    readonly stage: "read" | "publish" | "mark",
    override readonly cause: unknown,
  ) {
    super(`outbox relay ${stage} failed`, { cause });
  }
}

/** One shard: its lease and its publish loop. */
class ShardWorker {
  readonly lease: Lease;
  private readonly stopping = new AbortController();
  private readonly loop: Promise<void>;
  private readonly log: Logger;
  private lastCount = 0;
  private lastPurge = performance.now();
  private purging = false;

  constructor(
    readonly shard: string,
    private readonly d: WorkerDeps,
  ) {
    this.log = d.log.child({ shard });
    this.lease = createLease({
      bucket: d.bucket,
      key: `${d.keyspace}.${shard}`,
      owner: d.owner,
      renewMs: d.config.leaseRenewMs,
      claimMs: d.config.leaseClaimMs,
      log: this.log,
      onChange: (held) => {
        if (held) {
          d.metrics?.relayLeaseHeld.set({ shard }, 1);
          // A new holder counts and purges soon rather than a full interval later.
          this.lastCount = 0;
        } else {
          d.metrics?.relayLeaseHeld.set({ shard }, 0);
          d.metrics?.relayBacklog.remove({ shard });
        }
      },
    });
    d.metrics?.relayLeaseHeld.set({ shard }, 0);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    await this.lease.release();
  }

  private woken = false;
  private wakeUp: (() => void) | undefined;

  /** Rows were committed on this shard: read it now (or right after the round in flight). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Waits up to `ms`, less if woken (a wake during the last round ends it at once). */
  private async nap(ms: number, signal: AbortSignal): Promise<void> {
    if (!this.woken && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          this.wakeUp = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener("abort", done, { once: true });
        this.wakeUp = done;
      });
    }
    this.woken = false;
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.lease.whenHeld(signal);
        const conn = await this.d.bus.ready(signal);
        const n = await this.round(conn);
        if (failures > 0) this.log.info({ failures }, "outbox relay recovered");
        failures = 0;
        await this.housekeeping(n);
        if (n < this.d.config.batchSize) await this.nap(this.d.config.pollMs, signal);
      } catch (err) {
        if (signal.aborted) break;
        const stage = err instanceof RoundError ? err.stage : "other";
        this.d.metrics?.relayFailures.inc({ shard: this.shard, stage });
        const cause = err instanceof RoundError ? err.cause : err;
        // Loud once per outage, then quiet.
        if (failures === 0) this.log.warn({ err: cause, stage }, "outbox relay round failed; backing off this shard");
        else this.log.debug({ err: cause, stage, failures }, "outbox relay round failed again");
        await sleep(backoffMs(failures++, this.d.config.retryMinMs, this.d.config.retryMaxMs), signal);
      }
    }
  }

  /** Publishes one batch; returns how many rows it read. */
  private async round(conn: BusConnection): Promise<number> {
    const { router, config, metrics } = this.d;
    let rows: OutboxRow[];
    let db: ShardClient;
    try {
      db = router.primary(this.shard, { background: true });
      rows = await readUnsent(db, config.batchSize);
    } catch (err) {
      throw new RoundError("read", err);
    }
    const readAt = performance.now();
    if (rows.length === 0) {
      metrics?.relayBacklog.set({ shard: this.shard }, 0);
      return 0;
    }
    // Rows read just as the lease lapsed wait for the next holder.
    if (!this.lease.held()) return 0;

    // Pipelined: every publish is on the wire before the first ack is awaited.
    // One connection keeps them in order, so the stream stores them in id order.
    const results = await Promise.allSettled(
      rows.map((row) => {
        const { headers, span } = this.headersOf(row);
        const published = conn.js
          .publish(row.subject, row.payload, {
            msgID: row.eventId,
            headers,
            timeout: config.publishTimeoutMs,
          })
          .then((ack) => ({ ack, at: performance.now() }));
        if (span === undefined) return published;
        return published.then(
          (r) => {
            endMessageSpan(span, undefined, r.ack.duplicate ? "duplicate" : "stored");
            return r;
          },
          (err: unknown) => {
            endMessageSpan(span, err);
            throw err;
          },
        );
      }),
    );

    const acked: string[] = [];
    let firstFailure: { index: number; reason: unknown } | undefined;
    let storedAfterFailure = 0;
    results.forEach((r, i) => {
      const row = rows[i]!;
      if (r.status === "rejected") {
        firstFailure ??= { index: i, reason: r.reason };
        return;
      }
      acked.push(row.id);
      const { ack, at } = r.value as { ack: PubAck; at: number };
      metrics?.relayPublished.inc({ subject: row.subject, result: ack.duplicate ? "duplicate" : "stored" });
      if (!ack.duplicate) {
        metrics?.relayLatency.observe({ shard: this.shard }, (row.ageMs + (at - readAt)) / 1000);
        if (firstFailure !== undefined) storedAfterFailure++;
      }
    });

    if (acked.length > 0) {
      try {
        await markSent(db, acked);
      } catch (err) {
        // Published but not marked: the next round publishes them again and JetStream drops the copies.
        throw new RoundError("mark", err);
      }
    }
    if (firstFailure !== undefined) {
      if (storedAfterFailure > 0) {
        // The only way the stream's order can differ from the id order: a publish lost
        // in flight (a connection cut) while later ones landed. It is re-published next round.
        this.log.warn({ stored_after: storedAfterFailure, failed_id: rows[firstFailure.index]!.id }, "outbox rows published out of id order after a failed publish");
      }
      if (isNoStream(firstFailure.reason)) await this.d.bus.ensureStream().catch(() => {});
      throw new RoundError("publish", firstFailure.reason);
    }
    if (rows.length < config.batchSize) metrics?.relayBacklog.set({ shard: this.shard }, 0);
    return rows.length;
  }

  /** The backlog gauge on a busy shard, and the purge of old sent rows, between rounds. */
  private async housekeeping(lastRound: number): Promise<void> {
    const { router, config, metrics } = this.d;
    const now = performance.now();
    if (!this.lease.held()) return;
    if (lastRound >= config.batchSize && now - this.lastCount >= config.backlogIntervalMs) {
      this.lastCount = now;
      try {
        metrics?.relayBacklog.set({ shard: this.shard }, await countUnsent(router.primary(this.shard, { background: true })));
      } catch (err) {
        metrics?.relayFailures.inc({ shard: this.shard, stage: "backlog" });
        this.log.debug({ err }, "outbox backlog count failed");
      }
    }
    if (!this.purging && now - this.lastPurge >= config.purgeIntervalMs) this.purging = true;
    if (!this.purging) return;
    // One bounded DELETE per round, so a large purge never holds up publishing.
    try {
      const n = await purgeSent(router.primary(this.shard, { background: true }), config.retentionMs, config.purgeBatch);
      metrics?.relayPurged.inc({ shard: this.shard }, n);
      if (n > 0) this.log.debug({ rows: n }, "purged sent outbox rows");
      if (n < config.purgeBatch) {
        this.purging = false;
        this.lastPurge = performance.now();
      }
    } catch (err) {
      this.purging = false;
      this.lastPurge = performance.now();
      metrics?.relayFailures.inc({ shard: this.shard, stage: "purge" });
      this.log.warn({ err }, "outbox purge failed; trying again next interval");
    }
  }

  /**
   * The row's stored headers, its event and user ids, and, when this process
   * traces and the row was written under a trace, the publish span: its
   * context replaces the stored traceparent, so consumers' spans are its children.
   */
  private headersOf(row: OutboxRow): { headers: MsgHdrs; span: Span | undefined } {
    const h = natsHeaders();
    const stored: Record<string, string> = {};
    if (row.headers !== null && row.headers !== "") {
      try {
        const parsed = JSON.parse(row.headers) as unknown;
        if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
          for (const [k, v] of Object.entries(parsed)) {
            if (typeof v !== "string") continue;
            stored[k] = v;
            try {
              h.set(k, v);
            } catch {
              // Not a valid header name or value: the event goes out without it.
            }
          }
        }
      } catch {
        this.log.warn({ id: row.id }, "outbox row headers are not JSON; published without them");
      }
    }
    h.set(EVENT_ID_HEADER, row.eventId);
    h.set(USER_ID_HEADER, row.userId);
    const span = startPublishSpan(stored, { subject: row.subject, eventId: row.eventId, requestId: stored[REQUEST_ID_HEADER] });
    if (span !== undefined) {
      span.setAttribute(ATTR.shard, this.shard);
      injectSpan(span, (k, v) => h.set(k, v));
    }
    return { headers: h, span };
  }
}

function isNoStream(err: unknown): boolean {
  // A publish no stream listens to gets "no responders", which nats.js reports
  // as JetStreamNotEnabled (a class its public entry point does not export).
  return (err as { name?: unknown } | null)?.name === "JetStreamNotEnabled";
}
