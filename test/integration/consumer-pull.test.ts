// consume() against a private nats-server (2.9, as deployed; a short ack
// wait): how far it pulls ahead of its handlers, that pulling ahead keeps the
// delivery guarantees of lib/events/consumer.ts's module comment, and what it
// hands back at stop. Moved from lib/events/consumer.test.ts, whose "unit"
// project starts no servers; pullWindow itself is unit-tested there.
import { create, toBinary } from "@bufbuild/protobuf";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEventBus, type EventBus } from "../../lib/events/bus.js";
import { BUS_DEFAULTS } from "../../lib/events/config.js";
import { consume, pullWindow } from "../../lib/events/consumer.js";
import { EVENT_ID_HEADER } from "../../lib/events/headers.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { eventually } from "../support/eventually.js";
import { startTestNats, type TestNats } from "../support/nats.js";

describe("pulling from JetStream", () => {
  const log = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });
  let nats: TestNats;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const buses: EventBus[] = [];
  const newBus = async (): Promise<EventBus> => {
    const bus = createEventBus({ config: { ...BUS_DEFAULTS, natsUrl: nats.url }, log });
    buses.push(bus);
    await bus.ready(AbortSignal.timeout(10_000));
    return bus;
  };

  beforeAll(async () => {
    nats = await startTestNats();
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    for (const bus of buses) await bus.close();
    await nc?.close();
    await nats?.stop();
  });

  let published = 0;
  const publish = async (bus: EventBus, n: number, burst: boolean): Promise<void> => {
    const { js } = await bus.ready();
    const payload = toBinary(EVENTS.userFollowed.schema, create(EVENTS.userFollowed.schema, { followerId: 1n, followeeId: 2n }));
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const id = ++published;
      const h = natsHeaders();
      h.set(EVENT_ID_HEADER, String(id));
      const send = js.publish(EVENTS.userFollowed.subject, payload, { msgID: `pull-${id}`, headers: h });
      // One at a time (each waits for its store) as a steady trickle does, or all at once.
      if (burst) sends.push(send);
      else await send;
    }
    await Promise.all(sends);
  };

  it.each([1, 2, 8])("sends one pull request per several events, not one per event or two (concurrency %i); order and the limit hold", async (concurrency) => {
    const bus = await newBus();
    const durable = `pull-count-${concurrency}`;
    let pulls = 0;
    const spy = nc.subscribe(`$JS.API.CONSUMER.MSG.NEXT.${bus.stream}.${durable}`, {
      callback: () => {
        pulls++;
      },
    });
    await nc.flush();
    const seqs: number[] = [];
    let running = 0;
    let mostRunning = 0;
    const consumer = consume({
      bus,
      durable,
      subjects: [EVENTS.userFollowed],
      deliverPolicy: "new",
      concurrency,
      log,
      handler: async (event) => {
        running++;
        mostRunning = Math.max(mostRunning, running);
        await new Promise<void>((resolve) => setImmediate(resolve));
        seqs.push(event.streamSequence);
        running--;
      },
    });
    const events = 120;
    try {
      await consumer.started();
      await publish(bus, events / 2, false);
      await publish(bus, events / 2, true);
      await eventually("every event handled and acked", async () => {
        if (seqs.length < events) return false;
        const info = await jsm.consumers.info(bus.stream, durable);
        return info.num_ack_pending === 0 && info.num_pending === 0;
      });
    } finally {
      await consumer.stop();
    }
    // Every pull request the consumer sent has reached the server, and so the spy.
    await bus.current()?.nc.flush();
    await nc.flush();
    spy.unsubscribe();
    // nats.js's default (threshold 75% of max_messages = concurrency) sent one per 2 events at concurrency 8, one per event below 4.
    expect(pulls).toBeLessThanOrEqual(1 + Math.ceil(events / (pullWindow(concurrency).max_messages - 1)));
    expect(pulls).toBeLessThanOrEqual(1 + events / 4);
    expect(seqs).toHaveLength(events);
    expect(mostRunning).toBeLessThanOrEqual(concurrency);
    if (concurrency === 1) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it("holds no more than its window ahead of running handlers, leaves the rest to other instances, and hands back at stop what it had not started", async () => {
    const concurrency = 2;
    const durable = "pull-window";
    const events = 30;
    const handledBy: [string[], string[]] = [[], []];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let firstRunning = 0;
    const start = async (instance: 0 | 1, blocked: boolean, bus: EventBus) =>
      consume({
        bus,
        durable,
        subjects: [EVENTS.userFollowed],
        deliverPolicy: "new",
        concurrency,
        // Short: events nats.js still buffers when stop() closes its iterator are not naked but
        // come back after the ack wait (consumer.ts); the running ones are kept alive by in-progress acks.
        ackWaitMs: 4_000,
        log,
        handler: async (event) => {
          if (blocked) {
            firstRunning++;
            await gate;
          }
          handledBy[instance].push(event.eventId);
        },
      });
    const firstBus = await newBus();
    const first = await start(0, true, firstBus);
    let second: Awaited<ReturnType<typeof start>> | undefined;
    try {
      await first.started();
      await publish(firstBus, events, true);
      // The first instance runs 2 and holds a few more; a second instance takes every other
      // event while the first is still busy (it would wait forever for any the first held beyond its window).
      await eventually("the first instance's handlers running", () => firstRunning === concurrency);
      second = await start(1, false, await newBus());
      const window = concurrency + pullWindow(concurrency).max_messages;
      await eventually("the second instance handles all the first does not hold", async () => {
        const info = await jsm.consumers.info(firstBus.stream, durable);
        return handledBy[1].length >= events - window && info.num_pending === 0 && info.num_ack_pending === events - handledBy[1].length;
      });
      expect(handledBy[0]).toHaveLength(0);

      // Stopping the first hands back its unstarted events (a nak for those it took, the ack wait for any nats.js still buffered).
      const stopping = first.stop();
      release();
      await stopping;
      await eventually("every event handled once", () => handledBy[0].length + handledBy[1].length === events, { timeoutMs: 20_000 });
      expect(handledBy[0]).toHaveLength(concurrency);
      expect(new Set([...handledBy[0], ...handledBy[1]]).size).toBe(events);
    } finally {
      release();
      await first.stop();
      await second?.stop();
    }
  });

  it("keeps handlers that outlast the ack wait alive with in-progress acks: each event is delivered and run once", async () => {
    const bus = await newBus();
    const durable = "keep-alive";
    const runs = new Map<string, number>();
    const consumer = consume({
      bus,
      durable,
      subjects: [EVENTS.userFollowed],
      deliverPolicy: "new",
      concurrency: 4,
      ackWaitMs: 1_000,
      log,
      handler: async (event) => {
        runs.set(event.eventId, (runs.get(event.eventId) ?? 0) + 1);
        // Three of four take two and a half ack waits; the last is quick.
        if (runs.size <= 3) await new Promise((resolve) => setTimeout(resolve, 2_500));
      },
    });
    try {
      await consumer.started();
      await publish(bus, 4, true);
      await eventually("every event handled and acked", async () => {
        const info = await jsm.consumers.info(bus.stream, durable);
        return runs.size === 4 && info.num_ack_pending === 0 && info.num_pending === 0;
      });
      const info = await jsm.consumers.info(bus.stream, durable);
      // Delivered once each: no ack wait ran out under a running handler.
      expect(info.delivered.consumer_seq).toBe(4);
      expect([...runs.values()]).toEqual([1, 1, 1, 1]);
    } finally {
      await consumer.stop();
    }
  });
});
