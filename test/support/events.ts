// The events a test's system published: every message on the tenant's event
// stream whose subject matches, read through a fresh ephemeral consumer.
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { EVENT_STREAM } from "../../lib/events/subjects.js";

export interface EventReader {
  /** Every message so far on subjects matching `filter` (e.g. `chirp.tweet.v1.*`), oldest first, with its stream sequence. */
  read(filter: string): Promise<Array<{ subject: string; data: Uint8Array; seq: number }>>;
  readonly js: JetStreamClient;
  close(): Promise<void>;
}

export async function connectEvents(natsUrl: string): Promise<EventReader> {
  const nc: NatsConnection = await connect({ ...parseNatsUrl(natsUrl), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  const js = jetstream(nc);
  return {
    js,
    async read(filter) {
      const consumer = await js.consumers.get(EVENT_STREAM, { filter_subjects: filter });
      const out: Array<{ subject: string; data: Uint8Array; seq: number }> = [];
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 500, expires: 1000 });
        let got = 0;
        for await (const msg of batch) {
          got++;
          out.push({ subject: msg.subject, data: msg.data, seq: msg.seq });
        }
        if (got === 0) return out;
      }
    },
    close: () => nc.close(),
  };
}
