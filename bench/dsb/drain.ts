// Between runs: waits until the system's durable consumers have caught up.
//
// A closed-loop run of the mix leaves work behind it: the posts it made were
// answered at once, but their events (fan-out, search, notifications, the
// tweet service's indexes) are still being consumed when the run ends. A run
// started then would measure that backlog as well as its own requests (an
// open-loop run right after a post-heavy closed loop saw posts' p99 several
// times its own). Each run starts once every durable consumer of the event
// stream has nothing pending and nothing unacknowledged.
import { setTimeout as delay } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { EVENT_STREAM } from "../../lib/events/subjects.js";

/** What is still to do: events pending or delivered and unacknowledged, over every durable consumer. */
export interface Backlog {
  readonly events: number;
  /** The durable with the most, when any. */
  readonly largest: string | undefined;
}

/**
 * Resolves once every durable consumer of the event stream has caught up, or
 * after `timeoutMs` (it says so). Reports the backlog every second it waits.
 * Returns how long it waited.
 */
export async function drainConsumers(natsUrl: string, say: (line: string) => void, timeoutMs = 120_000): Promise<number> {
  const nc = await connect({ ...parseNatsUrl(natsUrl), name: "bench-drain" });
  try {
    const jsm = await jetstreamManager(nc);
    const backlog = async (): Promise<Backlog> => {
      let events = 0;
      let largest: { name: string; n: number } | undefined;
      for await (const c of jsm.consumers.list(EVENT_STREAM)) {
        const n = c.num_pending + c.num_ack_pending;
        events += n;
        if (n > 0 && (largest === undefined || n > largest.n)) largest = { name: c.name, n };
      }
      return { events, largest: largest?.name };
    };
    const started = performance.now();
    let lastSaid = started;
    for (;;) {
      const now = await backlog();
      const waited = performance.now() - started;
      if (now.events === 0) {
        if (waited >= 1000) say(`consumers caught up after ${(waited / 1000).toFixed(1)} s`);
        return waited;
      }
      if (waited >= timeoutMs) {
        say(`consumers still have ${now.events} events to do after ${(waited / 1000).toFixed(0)} s (most: ${now.largest}); measuring anyway`);
        return waited;
      }
      if (performance.now() - lastSaid >= 1000) {
        lastSaid = performance.now();
        say(`waiting for the consumers to catch up: ${now.events} events to do (most: ${now.largest})`);
      }
      await delay(100);
    }
  } finally {
    await nc.close();
  }
}
