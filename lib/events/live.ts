// Live-only events (LIVE_EVENTS in subjects.ts): core NATS publishes for
// whoever is subscribed at that moment, at most once. No outbox row, no stream,
// no acknowledgment: a copy published while NATS is unreachable, or by a
// process that stops before its change's commit is followed by this publish,
// is gone, which is what "live" promises (StreamEvents delivers only what
// happens while a stream is open).
import type { EventBus } from "./bus.js";

/** Publishes `payloads` on `subject` now, each its own message; drops them when NATS cannot take them. */
export type PublishLive = (subject: string, payloads: readonly Uint8Array[]) => void;

export function createLivePublisher(bus: EventBus): PublishLive {
  return (subject, payloads) => {
    const conn = bus.current();
    if (conn === undefined) return;
    try {
      for (const payload of payloads) conn.nc.publish(subject, payload);
    } catch {
      // A connection closing or draining refuses publishes: live events are at most once.
    }
  };
}
