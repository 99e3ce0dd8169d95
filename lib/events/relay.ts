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
// otherwise the shard waits until a commit of outbox rows wakes it, or pollMs
// at most, the safety net for a nudge that was lost. A commit in this
// process hands its rows over (outbox-wake.ts): they are published at once,
// without reading them back, and marked sent up to markDelayMs later, the
// rows of many commits in one UPDATE. A commit in another process nudges the
// relay over NATS, and the shard is read. A failed round (NATS away, the
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
import { countUnsent, markSent, markSentByEvent, purgeSent, readUnsent, type OutboxRow } from "./outbox-store.js";
import { relayWakeSubject, shardOfWake, takeCommittedRows, type CommittedOutboxRow } from "./outbox-wake.js";
import { NoStreamError } from "./publisher.js";
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

  // Rows committed in this process on a shard whose lease this relay holds are handed over at
  // commit: published without a read, and without a nudge over NATS (outbox-wake.ts).
  const stopTaking = takeCommittedRows((keyspace, shard, rows) => !stopped && keyspace === router.keyspace && (workers.get(shard)?.take(rows) ?? false));

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
      stopTaking();
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

/** A row to publish: read from the shard (with its outbox id) or handed over at commit (without). */
interface RelayRow {
  readonly id: string | undefined;
  readonly eventId: string;
  readonly userId: string;
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly headers: string | null;
  /** Age when its round began. */
  readonly ageMs: number;
}

/** What one pipelined publish of rows came to. */
interface Published {
  readonly acked: RelayRow[];
  readonly failed: RelayRow[];
  readonly firstFailure: { readonly row: RelayRow; readonly reason: unknown } | undefined;
  /** Rows stored after the first failure (out of order). */
  readonly storedAfterFailure: number;
}

/** Handed rows a worker holds at most before it leaves further commits to a read (a relay that cannot publish). */
const MAX_HANDED = 4096;
/** Event ids a worker remembers of its reads, for hand-overs that arrive after a read published their rows. */
const READ_LATELY = 4096;

/**
 * One shard: its lease and its publish loop. Two ways rows reach it: a commit
 * in this process hands them over (take), and they are published without a
 * read and marked sent a little later, many commits in one UPDATE; and a read
 * of the shard's unsent rows (readUnsent), at start, on a nudge from another
 * process, after a full batch or a failed round, and at every poll.
 */
class ShardWorker {
  readonly lease: Lease;
  private readonly stopping = new AbortController();
  private readonly loop: Promise<void>;
  private readonly log: Logger;
  private lastCount = 0;
  private lastPurge = performance.now();
  private purging = false;
  private failures = 0;
  /** Rows handed over at commit, not yet published. */
  private handed: Array<RelayRow & { readonly committedAt: number }> = [];
  /** Event ids of handed rows published and not yet marked sent, oldest first. */
  private unmarked: string[] = [];
  private unmarkedSince = 0;
  /** Event ids of handed rows until they are marked sent: a read skips them (published, or about to be). */
  private readonly inHand = new Set<string>();
  /**
   * Event ids a read published lately, oldest first: a row read between its
   * commit and its hand-over (a poll at that moment) is not published twice.
   */
  private readonly readLately = new Set<string>();
  private readDue = true;
  private nextPollAt = 0;
  /**
   * A read since the lease was taken found every unsent row (fewer than a
   * batch) and no hand-over was refused meanwhile: only then are rows taken
   * at commit, as no older unsent row can be waiting for a read (rows written
   * before the lease was held, or by another process, are only read). Before
   * that a hand-over would be published ahead of older rows of the shard.
   */
  private caughtUp = false;
  private refusedDuringRead = false;
  private wakeUp: (() => void) | undefined;

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
          this.wake();
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

  /** Rows were committed on this shard by another process (or a nudge was lost): read it now, or right after the round in flight. */
  wake(): void {
    this.readDue = true;
    this.wakeUp?.();
  }

  /**
   * Rows this process just committed on the shard. False when this worker
   * cannot take them (no lease, stopping, failing, or too many in hand): the
   * caller then nudges whichever relay holds the lease, which reads them.
   */
  take(rows: readonly CommittedOutboxRow[]): boolean {
    if (!this.lease.held()) this.caughtUp = false;
    if (this.stopping.signal.aborted || this.failures > 0 || !this.lease.held() || this.handed.length >= MAX_HANDED) return false;
    if (!this.caughtUp) {
      // Read them, in id order with the rows before them; and soon.
      this.refusedDuringRead = true;
      this.readDue = true;
      this.wakeUp?.();
      return false;
    }
    for (const r of rows) {
      if (this.inHand.has(r.eventId) || this.readLately.has(r.eventId)) continue;
      this.inHand.add(r.eventId);
      this.handed.push({ id: undefined, ...r, ageMs: 0 });
    }
    this.wakeUp?.();
    return true;
  }

  /** Waits up to `ms`, less if rows are handed over or a read is due. */
  private async nap(ms: number, signal: AbortSignal): Promise<void> {
    if (this.readDue || this.handed.length > 0 || signal.aborted || ms <= 0) return;
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

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    const { config } = this.d;
    while (!signal.aborted) {
      try {
        if (!this.lease.held()) this.caughtUp = false;
        await this.lease.whenHeld(signal);
        const conn = await this.d.bus.ready(signal);
        if (this.handed.length > 0) await this.publishHanded(conn);
        let n = 0;
        if (performance.now() >= this.nextPollAt) this.readDue = true;
        if (this.readDue) {
          this.readDue = false;
          // Marks first: a read returns the rows not yet marked, which are published already.
          await this.flushMarks();
          n = await this.round(conn);
          this.nextPollAt = performance.now() + config.pollMs;
          if (n >= config.batchSize) this.readDue = true;
        }
        if (this.unmarked.length >= config.batchSize || (this.unmarked.length > 0 && performance.now() - this.unmarkedSince >= config.markDelayMs)) {
          await this.flushMarks();
        }
        if (this.failures > 0) this.log.info({ failures: this.failures }, "outbox relay recovered");
        this.failures = 0;
        await this.housekeeping(n);
        const now = performance.now();
        const markIn = this.unmarked.length > 0 ? this.unmarkedSince + config.markDelayMs - now : Infinity;
        await this.nap(Math.min(this.nextPollAt - now, markIn), signal);
      } catch (err) {
        if (signal.aborted) break;
        // Handed rows not yet published are read again with the rest, and rows are taken
        // at commit again only after a read has caught up (they would pass the unsent ones).
        this.dropHanded();
        this.readDue = true;
        this.caughtUp = false;
        const stage = err instanceof RoundError ? err.stage : "other";
        this.d.metrics?.relayFailures.inc({ shard: this.shard, stage });
        const cause = err instanceof RoundError ? err.cause : err;
        // Loud once per outage, then quiet.
        if (this.failures === 0) this.log.warn({ err: cause, stage }, "outbox relay round failed; backing off this shard");
        else this.log.debug({ err: cause, stage, failures: this.failures }, "outbox relay round failed again");
        await sleep(backoffMs(this.failures++, config.retryMinMs, config.retryMaxMs), signal);
      }
    }
    // Stopping: what was published is marked, so that a successor does not publish it again.
    this.dropHanded();
    await this.flushMarks().catch(() => {});
  }

  private dropHanded(): void {
    for (const r of this.handed) this.inHand.delete(r.eventId);
    this.handed = [];
  }

  /** Publishes the rows handed over since the last round; they are marked sent later (flushMarks). */
  private async publishHanded(conn: BusConnection): Promise<void> {
    const rows = this.handed.filter((r) => !this.readLately.has(r.eventId));
    for (const r of this.handed) if (this.readLately.has(r.eventId)) this.inHand.delete(r.eventId);
    this.handed = [];
    if (rows.length === 0) return;
    const startedAt = performance.now();
    if (!this.lease.held()) {
      // Lost the lease meanwhile: the holder reads them, once nudged.
      for (const r of rows) this.inHand.delete(r.eventId);
      conn.nc.publish(relayWakeSubject(this.d.keyspace, this.shard));
      return;
    }
    const published = await this.publish(
      conn,
      rows.map((r) => ({ ...r, ageMs: Math.max(0, startedAt - r.committedAt) })),
      startedAt,
    );
    if (published.acked.length > 0 && this.unmarked.length === 0) this.unmarkedSince = performance.now();
    for (const r of published.acked) this.unmarked.push(r.eventId);
    for (const r of published.failed) this.inHand.delete(r.eventId);
    await this.failed(published);
  }

  /** Marks the handed rows published so far; on failure they stay to be marked at the next attempt. */
  private async flushMarks(): Promise<void> {
    if (this.unmarked.length === 0) return;
    const eventIds = this.unmarked;
    this.unmarked = [];
    try {
      await markSentByEvent(this.d.router.primary(this.shard, { background: true }), eventIds);
    } catch (err) {
      this.unmarked = [...eventIds, ...this.unmarked];
      throw new RoundError("mark", err);
    }
    for (const id of eventIds) this.inHand.delete(id);
  }

  /** Reads and publishes one batch of unsent rows, and marks them sent; returns how many rows it read. */
  private async round(conn: BusConnection): Promise<number> {
    const { router, config, metrics } = this.d;
    let read: OutboxRow[];
    let db: ShardClient;
    this.refusedDuringRead = false;
    try {
      db = router.primary(this.shard, { background: true });
      read = await readUnsent(db, config.batchSize);
    } catch (err) {
      throw new RoundError("read", err);
    }
    const readAt = performance.now();
    if (read.length === 0) {
      metrics?.relayBacklog.set({ shard: this.shard }, 0);
      if (this.lease.held() && !this.refusedDuringRead) this.caughtUp = true;
      return 0;
    }
    // Rows read just as the lease lapsed wait for the next holder.
    if (!this.lease.held()) return 0;
    // Rows handed over while the read was in flight are published from the hand-over.
    const rows = this.inHand.size === 0 ? read : read.filter((r) => !this.inHand.has(r.eventId));
    // Noted before publishing: a hand-over of these rows arriving meanwhile is dropped (a
    // failed publish leaves them unsent, and the read after the backoff takes them).
    for (const r of rows) {
      this.readLately.add(r.eventId);
      if (this.readLately.size > READ_LATELY) this.readLately.delete(this.readLately.values().next().value!);
    }
    const published = await this.publish(conn, rows, readAt);
    const acked = published.acked.map((r) => r.id!);
    if (acked.length > 0) {
      try {
        await markSent(db, acked);
      } catch (err) {
        // Published but not marked: the next round publishes them again and JetStream drops the copies.
        throw new RoundError("mark", err);
      }
    }
    await this.failed(published);
    if (read.length < config.batchSize) {
      metrics?.relayBacklog.set({ shard: this.shard }, 0);
      if (this.failures === 0 && this.lease.held() && !this.refusedDuringRead) this.caughtUp = true;
    }
    return read.length;
  }

  /**
   * Publishes rows pipelined: every publish is on the wire before the first
   * ack is awaited. One connection keeps them in order, so the stream stores
   * them in the order given.
   */
  private async publish(conn: BusConnection, rows: readonly RelayRow[], startedAt: number): Promise<Published> {
    const { config, metrics } = this.d;
    const results = await Promise.allSettled(
      rows.map((row) => {
        const { headers, span } = this.headersOf(row);
        const published = conn.publisher
          .publish(row.subject, row.payload, {
            msgID: row.eventId,
            headers,
            timeoutMs: config.publishTimeoutMs,
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
    const acked: RelayRow[] = [];
    const failed: RelayRow[] = [];
    let firstFailure: Published["firstFailure"];
    let storedAfterFailure = 0;
    results.forEach((r, i) => {
      const row = rows[i]!;
      if (r.status === "rejected") {
        firstFailure ??= { row, reason: r.reason };
        failed.push(row);
        return;
      }
      acked.push(row);
      const { ack, at } = r.value as { ack: PubAck; at: number };
      metrics?.relayPublished.inc({ subject: row.subject, result: ack.duplicate ? "duplicate" : "stored" });
      if (!ack.duplicate) {
        metrics?.relayLatency.observe({ shard: this.shard }, (row.ageMs + (at - startedAt)) / 1000);
        if (firstFailure !== undefined) storedAfterFailure++;
      }
    });
    return { acked, failed, firstFailure, storedAfterFailure };
  }

  /** Throws the round's first publish failure, if any. */
  private async failed(p: Published): Promise<void> {
    if (p.firstFailure === undefined) return;
    if (p.storedAfterFailure > 0) {
      // The only way the stream's order can differ from the rows' order: a publish lost
      // in flight (a connection cut) while later ones landed. It is re-published next round.
      this.log.warn({ stored_after: p.storedAfterFailure, failed_event: p.firstFailure.row.eventId }, "outbox rows published out of order after a failed publish");
    }
    if (isNoStream(p.firstFailure.reason)) await this.d.bus.ensureStream().catch(() => {});
    throw new RoundError("publish", p.firstFailure.reason);
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
  private headersOf(row: RelayRow): { headers: MsgHdrs; span: Span | undefined } {
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
        this.log.warn({ event_id: row.eventId }, "outbox row headers are not JSON; published without them");
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
  // A publish no stream listens to gets "no responders" (publisher.ts).
  return err instanceof NoStreamError;
}
