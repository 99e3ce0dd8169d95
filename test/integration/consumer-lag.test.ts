// A durable consumer's lag as the metrics show it (chirp_bus_consumer_*),
// against a private nats-server: events waiting, events being handled, and
// the age of the oldest unfinished one, back to 0 once the handler catches
// up; the series go away when the consumer stops.
import { create, toBinary } from "@bufbuild/protobuf";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createEventBus, type EventBus } from "../../lib/events/bus.js";
import { BUS_DEFAULTS } from "../../lib/events/config.js";
import { consume } from "../../lib/events/consumer.js";
import { EVENT_ID_HEADER } from "../../lib/events/headers.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { createMetrics } from "../../lib/metrics.js";
import { eventually } from "../support/eventually.js";
import { startTestNats, type TestNats } from "../support/nats.js";

const log = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });
let nats: TestNats;
let bus: EventBus;

beforeAll(async () => {
  nats = await startTestNats();
  bus = createEventBus({ config: { ...BUS_DEFAULTS, natsUrl: nats.url }, log });
  await bus.ready(AbortSignal.timeout(10_000));
});

afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

/** The value of a chirp_bus_consumer_* series for a durable, from the text a scrape gets; undefined when absent. */
async function series(metrics: ReturnType<typeof createMetrics>, name: string, durable: string): Promise<number | undefined> {
  const text = await metrics.registry.metrics();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(`durable="${durable}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

it("reports pending, ack-pending and the oldest unfinished event's age, and 0 once caught up", async () => {
  const metrics = createMetrics("consumer-lag-test");
  const durable = "lag-test";
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let handled = 0;
  const consumer = consume({
    bus,
    durable,
    subjects: [EVENTS.userFollowed],
    deliverPolicy: "new",
    concurrency: 2,
    lagPollMs: 100,
    log,
    metrics,
    handler: async () => {
      await gate;
      handled++;
    },
  });
  try {
    await consumer.started();
    const { js } = await bus.ready();
    // Another subject in between: the lag is measured from the first event under the filter.
    await js.publish(EVENTS.userUnfollowed.subject, new Uint8Array());
    const payload = toBinary(EVENTS.userFollowed.schema, create(EVENTS.userFollowed.schema, { followerId: 1n, followeeId: 2n }));
    for (let i = 0; i < 6; i++) {
      const h = natsHeaders();
      h.set(EVENT_ID_HEADER, String(1000 + i));
      await js.publish(EVENTS.userFollowed.subject, payload, { msgID: `lag-${i}`, headers: h });
    }
    // Two being handled (concurrency 2), four waiting.
    await eventually("gauges show the backlog", async () => {
      const pending = await series(metrics, "chirp_bus_consumer_pending", durable);
      const ackPending = await series(metrics, "chirp_bus_consumer_ack_pending", durable);
      return pending !== undefined && ackPending !== undefined && pending + ackPending === 6 && ackPending >= 2;
    });
    await eventually("the oldest event ages", async () => ((await series(metrics, "chirp_bus_consumer_lag_seconds", durable)) ?? 0) >= 0.5);
    expect(await series(metrics, "chirp_bus_consumer_lag_seconds", durable)).toBeLessThan(30);

    release();
    await eventually("all handled", async () => handled === 6);
    await eventually("caught up", async () => {
      const values = await Promise.all(
        ["chirp_bus_consumer_pending", "chirp_bus_consumer_ack_pending", "chirp_bus_consumer_lag_seconds"].map((n) => series(metrics, n, durable)),
      );
      return values.every((v) => v === 0);
    });
  } finally {
    await consumer.stop();
  }
  expect(await series(metrics, "chirp_bus_consumer_pending", durable)).toBeUndefined();
  expect(await series(metrics, "chirp_bus_consumer_lag_seconds", durable)).toBeUndefined();
});
