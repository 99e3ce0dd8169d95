// Durable pull consumers of the event stream, for services.
//
//   const consumer = consume({
//     bus: ctx.bus, durable: "graph-repair", log: ctx.log, metrics: ctx.metrics,
//     subjects: [EVENTS.userFollowed, EVENTS.userUnfollowed],
//     handler: async (event) => {
//       switch (event.subject) {
//         case EVENTS.userFollowed.subject: await repair(event.message.followerId, event.message.followeeId); break;
//         case EVENTS.userUnfollowed.subject: ...
//       }
//     },
//   });
//   ...
//   await consumer.stop();   // before the bus closes
//
// Delivery is at least once. A handler that returns acks the event; one that
// throws gets it again after a back-off (a delayed nak), up to maxDeliver
// deliveries, after which the event is dead-lettered: an error log line
// naming the durable, subject, event id and stream sequence (the event stays
// in the stream for its max age, to be replayed by hand). A handler may also
// throw DeferEventError to have the event again after a delay without it
// counting as a failure. So HANDLERS MUST BE
// IDEMPOTENT: the same event can arrive again after a redelivery, a crash
// before the ack, or a relay that re-published it after the duplicate window.
//
// nats-server 2.9 allows one filter subject per consumer. One consumer covers
// every subject asked for, filtering on their common pattern
// (`chirp.graph.v1.*` for two graph events) and acking without a call the
// events the handler did not ask for. That keeps one position and the
// stream's order across those subjects. With concurrency 1 events are handled
// in stream order, except that a retried event is handled after the ones
// behind it; with more, handlers run in parallel and finish in any order.
//
// Pulling. The client asks JetStream for events with pull requests (a publish
// to $JS.API.CONSUMER.MSG.NEXT, which nats-server keeps as a waiting request
// with its expiry and heartbeat timer); each event then costs one delivery
// and one ack, a publish each. Nothing else goes out per event (no flush, no
// +NXT), and acks cannot be batched: each message is acked on its own under
// AckPolicy.Explicit. consume() keeps up to max_messages events requested and
// asks again once no more than threshold_messages are outstanding; nats.js
// defaults that to 75%, so max_messages = concurrency sent a pull request
// every 2 events at concurrency 8 and one per event at 1 to 4. pullWindow()
// asks for a few events more than the handlers can run (concurrency + 4 to
// 16) and asks again when one is left: a pull request every 4 events at
// concurrency 1, 5 at 2, 7 at 4, 15 at 8, 79 at 64. NATS messages per event
// on the consumer's connection, counted by nats-server
// (bench/consumer-protocol.ts, 1,000 events at 50/s and in a burst, the same
// in both): 3 -> 2.25 (concurrency 1), 3 -> 2.2 (2), 3 -> 2.14 (4),
// 2.5 -> 2.07 (8), 2.06 -> 2.01 (64); 2 is the floor.
//
// The price is a few more events held ahead. nats.js sends a pull request
// only once the loop below has taken the events before it, so a process holds
// about max_messages events it has not started next to the running ones; they
// are delivered, so their ack wait runs and they count against
// max_ack_pending. Most unacked seen in a burst with 5 ms handlers (same
// bench, sampled every 20 ms, two runs): 3 -> 7 at concurrency 1, 6 -> 9 at
// 2, 12 -> 12-16 at 4, 20-24 -> 23-28 at 8, 123-125 -> 107-124 at 64. With
// no events, fewer outstanding requests expire and beat: 7.4 -> 1.8 messages
// in and 14.8 -> 3.7 out per minute at concurrency 8. A held event waits a few handler durations before it
// starts, and in-progress acks cover only running handlers: in a backlog of
// handlers taking more than about 4 s each (concurrency 1), 6 s (2) or 8 s
// (8), with the default 30 s ack wait, held events may be redelivered (it was
// about 10 s before). In this process the copy finds its id handled and is
// acked, but it counts as a delivery; another instance may run it again
// (handlers are idempotent); consumers whose handlers can run long
// (account erasure, user-deleted.ts) hold none ahead (pullAhead: 0). Other instances of the durable get the rest of a
// backlog, as JetStream serves waiting requests in turn and no instance asks
// beyond its window (two instances split a burst of 1,000 about evenly,
// before and after). stop() naks the events this loop has taken and not
// started, so another instance gets them at once; those nats.js still holds
// in its iterator's next batch when stop() closes it are dropped without a nak
// (nats.js 3 ends the iterator at its batch's end), and come back after the
// ack wait: at most one window per consumer, a restart's worst case.
import type { MessageShape } from "@bufbuild/protobuf";
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  ReplayPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
  type MsgRequest,
} from "@nats-io/jetstream";
import { nanos, type Subscription } from "@nats-io/transport-node";
import type { Logger } from "../logger.js";
import { labelledChildren, type Metrics } from "../metrics.js";
import { endMessageSpan, runInSpan, startConsumerSpan } from "../tracing/tracing.js";
import type { EventBus } from "./bus.js";
import { eventMetrics, type EventMetrics } from "./metrics.js";
import { EVENT_ID_HEADER, REQUEST_ID_HEADER, USER_ID_HEADER } from "./headers.js";
import { backoffMs, sleep } from "./sleep.js";
import { BUS_DEFAULTS } from "./config.js";
import { EVENTS } from "./subjects.js";
import { decodeMessage } from "../proto-codec.js";

export type EventName = keyof typeof EVENTS;
/** An entry of EVENTS: a subject and its schema. */
export type EventEntry = (typeof EVENTS)[EventName];

/** What a handler gets. Switch on `subject` (or compare `type`) to narrow `message`. */
export type ConsumedEvent<T extends EventEntry = EventEntry> = T extends EventEntry
  ? {
      /** The EVENTS entry of this event. */
      readonly type: T;
      readonly subject: T["subject"];
      /** The payload, decoded with the entry's schema. */
      readonly message: MessageShape<T["schema"]>;
      /** The payload as published (binary protobuf). */
      readonly payload: Uint8Array;
      /** The outbox row's Snowflake event id (decimal); the same on every redelivery. */
      readonly eventId: string;
      /** The user whose change this announces. */
      readonly userId: string | undefined;
      /** The x-request-id of the request that wrote it, when it had one. */
      readonly requestId: string | undefined;
      readonly headers: Readonly<Record<string, string>>;
      /** 0 on the first delivery. */
      readonly redeliveryCount: number;
      readonly streamSequence: number;
      /** When JetStream stored it. */
      readonly publishTime: Date;
    }
  : never;

/** Thrown by a handler for an event that can never succeed: dead-lettered at once, not retried. */
export class UnprocessableEventError extends Error {
  override readonly name = "UnprocessableEventError";
}

/**
 * Thrown by a handler that has done what it can for now and wants the event
 * again in `delayMs` (a second pass, say): not a failure, so no warning and
 * result "deferred". Each deferral is a delivery, counted against maxDeliver.
 */
export class DeferEventError extends Error {
  override readonly name = "DeferEventError";
  constructor(readonly delayMs: number) {
    super(`event deferred for ${Math.round(delayMs)} ms`);
  }
}

export class ConsumerConfigError extends Error {
  override readonly name = "ConsumerConfigError";
}

export interface ConsumeOptions<T extends EventEntry> {
  readonly bus: EventBus;
  /** The consumer's durable name: its position survives restarts and is shared by every instance of the service. */
  readonly durable: string;
  /** Entries of EVENTS to receive. */
  readonly subjects: readonly T[];
  /** Must be idempotent (see the module comment). Resolve to ack; throw to retry. */
  readonly handler: (event: ConsumedEvent<T>) => Promise<void>;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Handlers running at once in this process; default 8. It holds a few more events ahead (pullWindow()). */
  readonly concurrency?: number;
  /**
   * Events requested beyond the running handlers (pullWindow()); default
   * min(16, max(4, concurrency)). 0 for handlers that can run long (account
   * erasure): an event held ahead waits for a handler without an in-progress
   * ack, so behind long handlers it would outlive the ack wait and be
   * delivered again.
   */
  readonly pullAhead?: number;
  /** Deliveries before an event is dead-lettered; default 10. */
  readonly maxDeliver?: number;
  /** Redelivery after this long without an ack (a crashed process); default the bus's (CHIRP_EVENTS_ACK_WAIT_MS, 30 000 ms). Long handlers are kept alive with in-progress acks. */
  readonly ackWaitMs?: number;
  /** Retry delay after a handler error: from min, doubling per delivery, up to max (defaults 1000, 60 000 ms). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Unacked events across all instances before the server holds back more; default 1000. */
  readonly maxAckPending?: number;
  /** Where a consumer created now starts: every retained event ("all", default) or only new ones. */
  readonly deliverPolicy?: "all" | "new";
  /** How long stop() waits for running handlers; default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /** How often the consumer's lag is read from JetStream for the metrics (with `metrics` only); default 15 000 ms. */
  readonly lagPollMs?: number;
}

export interface EventConsumer {
  readonly durable: string;
  /** The consumer's filter subject (see the module comment). */
  readonly filterSubject: string;
  /** Resolves once messages are being pulled (tests, readiness). */
  started(): Promise<void>;
  /**
   * Stops pulling, hands back the events it took and had not started (nak,
   * so another instance gets them at once; any still buffered by nats.js
   * come back after the ack wait), waits for running handlers (bounded by
   * drainTimeoutMs) and flushes their acks.
   */
  stop(): Promise<void>;
}

const DURABLE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function consume<T extends EventEntry>(opts: ConsumeOptions<T>): EventConsumer {
  if (!DURABLE_NAME.test(opts.durable)) throw new ConsumerConfigError("durable name: letters, digits, - and _ only (at most 64)");
  if (opts.subjects.length === 0) throw new ConsumerConfigError("no subjects to consume");
  const concurrency = positive(opts.concurrency ?? 8, "concurrency");
  const maxDeliver = positive(opts.maxDeliver ?? 10, "maxDeliver");
  const ackWaitMs = positive(opts.ackWaitMs ?? opts.bus.ackWaitMs ?? BUS_DEFAULTS.ackWaitMs, "ackWaitMs");
  const retryMinMs = opts.retryMinMs ?? 1000;
  const retryMaxMs = opts.retryMaxMs ?? 60_000;
  const drainTimeoutMs = opts.drainTimeoutMs ?? 10_000;
  const { bus, durable } = opts;
  const bySubject = new Map<string, EventEntry>(opts.subjects.map((t) => [t.subject, t]));
  const filterSubject = filterSubjectFor([...bySubject.keys()]);
  const log = opts.log.child({ component: "event-consumer", durable });
  const m = opts.metrics === undefined ? undefined : eventMetrics(opts.metrics.registry);
  const config: Partial<ConsumerConfig> & { durable_name: string } = {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: opts.deliverPolicy === "new" ? DeliverPolicy.New : DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
    filter_subject: filterSubject,
    ack_wait: nanos(ackWaitMs),
    max_deliver: maxDeliver,
    max_ack_pending: opts.maxAckPending ?? 1000,
  };

  const stopping = new AbortController();
  const inflight = new Set<Promise<void>>();
  let messages: ConsumerMessages | undefined;
  let advisories: Subscription | undefined;
  let markStarted!: () => void;
  const startedP = new Promise<void>((resolve) => (markStarted = resolve));
  const slots = createSlots(concurrency);
  // Event ids this process has handled: a redelivery whose ack was lost (say,
  // nats-server restarted before the ack was stored) is acknowledged again
  // without running the handler twice. Across processes handlers must still
  // be idempotent; this only spares them the common case.
  const handled = createRecentSet(50_000);
  const lagPoll = m === undefined ? undefined : startLagPoll(bus, durable, filterSubject, m, log, positive(opts.lagPollMs ?? 15_000, "lagPollMs"));
  // Handlers running now. One timer for them all tells the server each is
  // still being worked on every half ack wait, so ack_wait does not redeliver
  // a long one meanwhile (a timer per event cost every event one, for the few
  // that run that long).
  const running = new Set<JsMsg>();
  const keepAlive = setInterval(() => {
    for (const msg of running) msg.working();
  }, Math.max(500, Math.floor(ackWaitMs / 2)));
  keepAlive.unref();
  const counted = m === undefined ? undefined : labelledChildren((labels) => m.consumed.labels(labels));
  const count = (subject: string, result: string): void => counted?.(`${subject}\u0000${result}`, () => ({ durable, subject, result })).inc();
  const timed = m === undefined ? undefined : labelledChildren((labels) => m.handlerDuration.labels(labels));
  const observeDuration = (subject: string, seconds: number): void => timed?.(subject, () => ({ durable, subject })).observe(seconds);

  const deadLetter = (msg: JsMsg, event: { subject: string; eventId: string | undefined }, err: unknown, why: string): void => {
    // No reason on the TERM: nats-server 2.9 only understands a bare one (2.10.4 added reasons).
    msg.term();
    count(event.subject, "dead_letter");
    log.error(
      { err, subject: event.subject, event_id: event.eventId, stream_seq: msg.seq, deliveries: msg.info.deliveryCount, why },
      "event dead-lettered",
    );
  };

  const handle = async (msg: JsMsg): Promise<void> => {
    const type = bySubject.get(msg.subject);
    const hdrs = headersOf(msg);
    const eventId = hdrs[EVENT_ID_HEADER] ?? hdrs["Nats-Msg-Id"];
    if (type === undefined) {
      // Under the filter but not asked for (a sibling subject, or an event type newer than this code).
      msg.ack();
      count(msg.subject, "skipped");
      return;
    }
    let message: MessageShape<EventEntry["schema"]>;
    try {
      message = decodeMessage(type.schema, msg.data);
    } catch (err) {
      deadLetter(msg, { subject: msg.subject, eventId }, err, "payload does not decode");
      return;
    }
    if (eventId !== undefined && handled.has(eventId)) {
      msg.ack();
      count(type.subject, "duplicate");
      return;
    }
    const event = {
      type,
      subject: type.subject,
      message,
      payload: msg.data,
      eventId: eventId ?? "",
      userId: hdrs[USER_ID_HEADER],
      requestId: hdrs[REQUEST_ID_HEADER],
      headers: hdrs,
      redeliveryCount: Math.max(0, msg.info.deliveryCount - 1),
      streamSequence: msg.seq,
      publishTime: msg.time,
    } as unknown as ConsumedEvent<T>;

    running.add(msg);
    const started = performance.now();
    // The handler runs in the event's trace (the request that wrote it), so its own calls join it too.
    const span = startConsumerSpan(hdrs, { subject: type.subject, eventId, requestId: event.requestId, durable, redeliveryCount: event.redeliveryCount });
    try {
      await (span === undefined ? opts.handler(event) : runInSpan(span, () => opts.handler(event)));
      msg.ack();
      if (eventId !== undefined) handled.add(eventId);
      count(type.subject, "ok");
      if (span !== undefined) endMessageSpan(span, undefined, "ok");
    } catch (err) {
      const deliveries = msg.info.deliveryCount;
      let outcome = "retry";
      if (err instanceof DeferEventError) {
        // Not a failure: the handler asked for the event again later.
        outcome = "deferred";
        msg.nak(Math.max(0, Math.round(err.delayMs)));
        count(type.subject, "deferred");
      } else if (err instanceof UnprocessableEventError) {
        outcome = "dead_letter";
        deadLetter(msg, { subject: type.subject, eventId }, err, "handler refused it");
      } else if (deliveries >= maxDeliver) {
        outcome = "dead_letter";
        deadLetter(msg, { subject: type.subject, eventId }, err, `handler failed ${deliveries} times`);
      } else {
        const base = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(deliveries - 1, 20));
        const delay = Math.round(base * (0.8 + Math.random() * 0.4));
        msg.nak(delay);
        count(type.subject, "retry");
        log.warn({ err, subject: type.subject, event_id: eventId, deliveries, retry_in_ms: delay }, "event handler failed; will retry");
      }
      if (span !== undefined) endMessageSpan(span, outcome === "deferred" ? undefined : err, outcome);
    } finally {
      running.delete(msg);
      observeDuration(type.subject, (performance.now() - started) / 1000);
    }
  };

  const loop = (async () => {
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const conn = await bus.ready(stopping.signal);
        await ensureConsumer(conn.jsm, bus.stream, config);
        advisories?.unsubscribe();
        // Deliveries exhausted by ack_wait expiries (a handler that hung, or processes that died) never reach handle().
        advisories = conn.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${bus.stream}.${durable}`, {
          callback: (_err, adv) => {
            let body: { stream_seq?: number; deliveries?: number } = {};
            try {
              body = adv.json();
            } catch {
              // an unreadable advisory still says something was dead-lettered
            }
            count(filterSubject, "dead_letter");
            log.error({ stream_seq: body.stream_seq, deliveries: body.deliveries }, "event dead-lettered: no ack within ack_wait on its last delivery");
          },
        });
        const consumer = await conn.js.consumers.get(bus.stream, durable);
        messages = await consumer.consume(pullWindow(concurrency, opts.pullAhead));
        // Stopped while starting: the iterator is closed and not entered. Its
        // close() is not awaited: closed before its first pull completes it
        // never settled (nats.js 3), and stop() waits for this loop (a
        // process whose start failed on a configuration error hung in its
        // clean-up, test/e2e/startup-config-error.test.ts).
        if (stopping.signal.aborted) {
          void messages.close().catch(() => {});
          break;
        }
        failures = 0;
        markStarted();
        log.info({ filter: filterSubject, stream: bus.stream }, "consuming events");
        for await (const msg of messages) {
          if (stopping.signal.aborted) {
            msg.nak();
            continue;
          }
          await slots.acquire();
          if (stopping.signal.aborted) {
            slots.release();
            msg.nak();
            continue;
          }
          const p = handle(msg)
            .catch((err: unknown) => log.error({ err }, "event handling failed unexpectedly"))
            .finally(() => {
              slots.release();
              inflight.delete(p);
            });
          inflight.add(p);
        }
        // The iterator ends when we stop it or the connection closes for good (then: a new one).
      } catch (err) {
        if (stopping.signal.aborted) break;
        failures++;
        const fatal = err instanceof ConsumerConfigError;
        if (failures === 1 || fatal) log[fatal ? "error" : "warn"]({ err }, "event consumer cannot start; retrying");
        await sleep(fatal ? 30_000 : backoffMs(failures - 1, 250, 10_000), stopping.signal);
      }
    }
  })();

  return {
    durable,
    filterSubject,
    started: () => startedP,
    stop: async () => {
      if (stopping.signal.aborted) return;
      stopping.abort();
      lagPoll?.stop();
      await messages?.close().catch(() => {});
      await loop;
      const drained = Promise.allSettled([...inflight]);
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        drained.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), drainTimeoutMs))),
      ]);
      clearTimeout(timer);
      // Kept alive while they drained; those still running now are given up (redelivered).
      clearInterval(keepAlive);
      if (late) log.warn({ running: inflight.size }, "event handlers still running at stop; their events will be redelivered");
      advisories?.unsubscribe();
      // Acks are plain publishes: make sure they left before the caller closes the bus.
      await bus.current()?.nc.flush().catch(() => {});
    },
  };
}

/**
 * How far consume() pulls ahead of `concurrency` running handlers (see the
 * module comment): a few events more than can run, asked for again when one
 * is left, so a pull request goes out every `max_messages - 1` events.
 */
export function pullWindow(concurrency: number, ahead = Math.min(16, Math.max(4, concurrency))): { max_messages: number; threshold_messages?: number } {
  // None ahead: nats.js's own refill (at 75 % of max_messages), as before pullWindow().
  if (ahead === 0) return { max_messages: concurrency };
  return { max_messages: concurrency + ahead, threshold_messages: 1 };
}

/**
 * The one filter subject that covers `subjects`: the subject itself, or
 * their common pattern token by token (`*` where they differ).
 */
export function filterSubjectFor(subjects: readonly string[]): string {
  const split = subjects.map((s) => s.split("."));
  const first = split[0];
  if (first === undefined) throw new ConsumerConfigError("no subjects to consume");
  if (split.some((t) => t.length !== first.length)) return ">";
  return first.map((token, i) => (split.every((t) => t[i] === token) ? token : "*")).join(".");
}

/**
 * Reads the durable's state from JetStream every `everyMs` into the lag
 * gauges: pending and ack-pending counts, and the age of the oldest event not
 * yet finished (the first one under the filter past the ack floor). While
 * NATS cannot be asked the series are removed: unknown, not stale.
 */
function startLagPoll(
  bus: EventBus,
  durable: string,
  filterSubject: string,
  m: EventMetrics,
  log: Logger,
  everyMs: number,
): { stop(): void } {
  const labels = { durable };
  const forget = (): void => {
    m.consumerPending.remove(labels);
    m.consumerAckPending.remove(labels);
    m.consumerLag.remove(labels);
  };
  let running = false;
  let stopped = false;
  const poll = async (): Promise<void> => {
    const conn = bus.current();
    if (conn === undefined) return forget();
    const info = await conn.jsm.consumers.info(bus.stream, durable);
    let lagSeconds = 0;
    if (info.num_pending + info.num_ack_pending > 0) {
      // STREAM.MSG.GET has taken next_by_subj since nats-server 2.9; the
      // client's MsgRequest type lists only the direct-get API's use of it.
      const query = { seq: info.ack_floor.stream_seq + 1, next_by_subj: filterSubject } as unknown as MsgRequest;
      const oldest = await conn.jsm.streams.getMessage(bus.stream, query);
      if (oldest !== null) lagSeconds = Math.max(0, (Date.now() - oldest.time.getTime()) / 1000);
    }
    if (stopped) return;
    m.consumerPending.set(labels, info.num_pending);
    m.consumerAckPending.set(labels, info.num_ack_pending);
    m.consumerLag.set(labels, lagSeconds);
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    poll()
      .catch((err: unknown) => {
        // The consumer not created yet, or NATS away: the loop reports those.
        log.debug({ err }, "cannot read consumer lag");
        forget();
      })
      .finally(() => (running = false));
  }, everyMs);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      forget();
    },
  };
}

async function ensureConsumer(jsm: JetStreamManager, stream: string, want: Partial<ConsumerConfig> & { durable_name: string }): Promise<void> {
  let have: ConsumerConfig;
  try {
    have = (await jsm.consumers.info(stream, want.durable_name)).config;
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
    try {
      await jsm.consumers.add(stream, want);
      return;
    } catch (addErr) {
      // Another instance created it first.
      if (!(addErr instanceof JetStreamApiError)) throw addErr;
      have = (await jsm.consumers.info(stream, want.durable_name)).config;
    }
  }
  if ((have.filter_subject ?? "") !== want.filter_subject) {
    // nats-server 2.9 cannot change a consumer's filter; deleting it would lose its position.
    throw new ConsumerConfigError(
      `durable ${want.durable_name} filters ${have.filter_subject ?? "(nothing)"}, this code wants ${want.filter_subject}: use a new durable name`,
    );
  }
  if (have.ack_wait !== want.ack_wait || have.max_deliver !== want.max_deliver || have.max_ack_pending !== want.max_ack_pending) {
    await jsm.consumers.update(stream, want.durable_name, {
      ack_wait: want.ack_wait!,
      max_deliver: want.max_deliver!,
      max_ack_pending: want.max_ack_pending!,
    });
  }
}

function headersOf(msg: JsMsg): Record<string, string> {
  const out: Record<string, string> = {};
  const h = msg.headers;
  if (h === undefined) return out;
  for (const k of h.keys()) out[k] = h.get(k);
  return out;
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new ConsumerConfigError(`${name} must be a positive integer`);
  return n;
}

function createSlots(size: number): { acquire(): Promise<void>; release(): void } {
  let free = size;
  const waiting: (() => void)[] = [];
  return {
    acquire: () => {
      if (free > 0) {
        free--;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiting.push(resolve));
    },
    release: () => {
      const next = waiting.shift();
      if (next !== undefined) next();
      else free++;
    },
  };
}

/** A set that remembers only its `capacity` most recently added members. */
function createRecentSet(capacity: number): { has(id: string): boolean; add(id: string): void } {
  const members = new Set<string>();
  return {
    has: (id) => members.has(id),
    add(id) {
      members.add(id);
      if (members.size > capacity) members.delete(members.values().next().value as string);
    },
  };
}
