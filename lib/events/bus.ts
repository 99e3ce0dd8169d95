// The event bus: one NATS connection per process, with JetStream and the
// event stream made sure of. Nothing waits on NATS at startup: the connection
// is made in the background, retried forever with back-off, and users ask for
// it with ready() when they have something to do. The outbox holds events
// while NATS is away.
//
//   const bus = createEventBus({ config: loadBusConfig(env), log });
//   const { js } = await bus.ready(signal);   // connected, stream ensured
//   ...
//   await bus.close();                        // drain: pending publishes and acks go out first
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../logger.js";
import type { BusConfig } from "./config.js";
import { coalesceFlushes } from "./nats-flush.js";
import { parseNatsUrl } from "./nats-url.js";
import { backoffMs, sleep } from "./sleep.js";
import { EVENT_STREAM, EVENT_SUBJECTS } from "./subjects.js";
import { createStreamPublisher, type StreamPublisher } from "./publisher.js";

export interface BusConnection {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Publishes to the stream with their acknowledgements on one reply subscription (publisher.ts): the outbox relay's. */
  readonly publisher: StreamPublisher;
}

export interface EventBus {
  /** The stream events are published to (EVENT_STREAM unless a test names its own). */
  readonly stream: string;
  /** Durable consumers' ack wait unless one sets its own (CHIRP_EVENTS_ACK_WAIT_MS). */
  readonly ackWaitMs?: number;
  /** The connection while it is up (connected, stream ensured); undefined while NATS is away. */
  current(): BusConnection | undefined;
  /**
   * Resolves once the connection is up (at once when it is). Rejects with
   * BusClosedError after close(), or with the signal's reason when it aborts.
   */
  ready(signal?: AbortSignal): Promise<BusConnection>;
  /**
   * Creates the stream if it is missing (a server that lost its store) and
   * brings the limits this process manages in line. Called on every connect;
   * publishers call it again when JetStream answers that no stream took a message.
   */
  ensureStream(): Promise<void>;
  /** Stops reconnecting and drains the connection (pending publishes and acks are flushed). */
  close(): Promise<void>;
}

export class BusClosedError extends Error {
  override readonly name = "BusClosedError";
  constructor() {
    super("event bus closed");
  }
}

export interface CreateEventBusOptions {
  readonly config: BusConfig & { readonly natsUrl: string };
  readonly log: Logger;
  /** Client name shown by the server (e.g. chirp-tweet). */
  readonly name?: string;
  /** Default EVENT_STREAM; tests may use their own (over the same subjects). */
  readonly stream?: string;
  /** Back-off between connection attempts: from min, doubling, up to max (defaults 250 ms, 5 s). */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
}

export function createEventBus(opts: CreateEventBusOptions): EventBus {
  const log = opts.log.child({ component: "event-bus" });
  const stream = opts.stream ?? EVENT_STREAM;
  const minMs = opts.reconnectMinMs ?? 250;
  const maxMs = opts.reconnectMaxMs ?? 5000;
  const stop = new AbortController();
  let conn: BusConnection | undefined;
  let up = false;
  let waiters: { resolve: (c: BusConnection) => void; reject: (err: unknown) => void }[] = [];

  const setUp = (next: BusConnection | undefined): void => {
    conn = next ?? conn;
    up = next !== undefined;
    if (!up || conn === undefined) return;
    const ready = conn;
    const woken = waiters;
    waiters = [];
    for (const w of woken) w.resolve(ready);
  };

  const streamConfig = (): Partial<StreamConfig> & { name: string } => ({
    name: stream,
    subjects: [EVENT_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(opts.config.maxAgeMs),
    duplicate_window: nanos(opts.config.duplicateWindowMs),
    max_bytes: opts.config.maxBytes,
    max_msg_size: opts.config.maxMsgSize,
    num_replicas: 1,
  });

  const ensureStreamOn = async (jsm: JetStreamManager): Promise<void> => {
    const want = streamConfig();
    let have: StreamConfig;
    try {
      have = (await jsm.streams.info(stream)).config;
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
      try {
        await jsm.streams.add(want);
        log.info({ stream, subjects: want.subjects }, "event stream created");
        return;
      } catch (addErr) {
        // Another process created it between our info and add: fine, check it below.
        if (!(addErr instanceof JetStreamApiError)) throw addErr;
        have = (await jsm.streams.info(stream)).config;
      }
    }
    // Storage and retention cannot change; the limits can.
    const differs =
      have.max_age !== want.max_age ||
      have.duplicate_window !== want.duplicate_window ||
      have.max_bytes !== want.max_bytes ||
      have.max_msg_size !== want.max_msg_size ||
      have.discard !== want.discard ||
      have.subjects.join(",") !== want.subjects!.join(",");
    if (differs) {
      await jsm.streams.update(stream, {
        subjects: want.subjects!,
        max_age: want.max_age!,
        duplicate_window: want.duplicate_window!,
        max_bytes: want.max_bytes!,
        max_msg_size: want.max_msg_size!,
        discard: want.discard!,
      });
      log.info({ stream }, "event stream limits updated");
    }
  };

  const backoff = (attempt: number): number => backoffMs(attempt, minMs, maxMs);

  // One connection at a time; a new one only if the client gives up on the
  // old (it reconnects by itself for as long as it lives).
  const loop = (async () => {
    let attempt = 0;
    while (!stop.signal.aborted) {
      let nc: NatsConnection | undefined;
      try {
        let reconnects = 0;
        nc = await connect({
          ...parseNatsUrl(opts.config.natsUrl),
          ...(opts.name === undefined ? {} : { name: opts.name }),
          timeout: 2000,
          maxReconnectAttempts: -1,
          reconnectDelayHandler: () => backoff(reconnects++),
          pingInterval: 10_000,
          maxPingOut: 3,
          // No Error made (with its stack) per request to decorate a timeout
          // that rarely comes: 12-15 µs of CPU less per JetStream publish
          // (a scratch loop of 5,000, Node 20). Timeouts keep their message.
          noAsyncTraces: true,
        });
        // Acks, pull requests and publishes queued in one turn of the loop go out in one write (nats-flush.ts).
        if (!coalesceFlushes(nc)) log.debug("nats.js has no flushPending to defer: one write per microtask checkpoint");
        const jsm = await jetstreamManager(nc);
        await ensureStreamOn(jsm);
        const connection: BusConnection = { nc, js: jetstream(nc), jsm, publisher: createStreamPublisher(nc) };
        if (stop.signal.aborted) throw new BusClosedError();
        attempt = 0;
        setUp(connection);
        log.info({ server: nc.getServer(), stream }, "event bus connected");
        const watch = (async () => {
          for await (const s of nc.status()) {
            if (s.type === "disconnect") {
              setUp(undefined);
              log.warn({ server: s.server }, "event bus disconnected; reconnecting");
            } else if (s.type === "reconnect") {
              reconnects = 0;
              // A server that came back empty has no stream; re-check before anyone publishes.
              try {
                await ensureStreamOn(jsm);
              } catch (err) {
                log.warn({ err }, "event stream check after reconnect failed; publishers will retry");
              }
              setUp(connection);
              log.info({ server: s.server }, "event bus reconnected");
            }
          }
        })();
        await nc.closed();
        setUp(undefined);
        connection.publisher.close();
        await watch.catch(() => {});
        if (stop.signal.aborted) return;
        log.warn("event bus connection closed by the client; connecting again");
      } catch (err) {
        setUp(undefined);
        await nc?.close().catch(() => {});
        if (stop.signal.aborted) return;
        // Loud the first time, then quiet: a long outage should not flood the log.
        if (attempt === 0) log.warn({ err }, "event bus cannot connect yet; retrying");
        else log.debug({ err, attempt }, "event bus connect attempt failed");
        await sleep(backoff(attempt++), stop.signal);
      }
    }
  })();

  return {
    stream,
    ackWaitMs: opts.config.ackWaitMs,
    current: () => (up ? conn : undefined),
    ready: (signal) => {
      if (stop.signal.aborted) return Promise.reject(new BusClosedError());
      if (signal?.aborted === true) return Promise.reject(signal.reason);
      if (up && conn !== undefined) return Promise.resolve(conn);
      return new Promise<BusConnection>((resolve, reject) => {
        const onAbort = (): void => {
          waiters = waiters.filter((w) => w !== waiter);
          reject(signal?.reason);
        };
        const waiter = {
          resolve: (c: BusConnection) => {
            signal?.removeEventListener("abort", onAbort);
            resolve(c);
          },
          reject: (err: unknown) => {
            signal?.removeEventListener("abort", onAbort);
            reject(err);
          },
        };
        waiters.push(waiter);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    ensureStream: async () => {
      // While NATS is away there is nothing to check; the reconnect checks it anyway.
      if (up && conn !== undefined) await ensureStreamOn(conn.jsm);
    },
    close: async () => {
      if (stop.signal.aborted) return;
      stop.abort();
      const woken = waiters;
      waiters = [];
      for (const w of woken) w.reject(new BusClosedError());
      const nc = conn?.nc;
      up = false;
      if (nc !== undefined && !nc.isClosed()) await nc.drain().catch(() => nc.close());
      await loop;
    },
  };
}
