// The relay's JetStream publisher (lib/events/publisher.ts) against a private
// nats-server: acknowledgements come back to the right publish, in order, a
// repeated message id is reported as a duplicate, the stream's refusal and a
// subject no stream takes are errors of their own, and a publish nobody
// answers times out.
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamPublisher, NoStreamError, PublishRefusedError, PublishTimeoutError, type StreamPublisher } from "../../lib/events/publisher.js";
import { startTestNats, type TestNats } from "../support/nats.js";

describe("stream publisher", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let publisher: StreamPublisher;

  beforeAll(async () => {
    nats = await startTestNats();
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "P", subjects: ["p.>"], duplicate_window: 60_000_000_000 });
    publisher = createStreamPublisher(nc, { sweepMs: 20 });
  });

  afterAll(async () => {
    publisher?.close();
    await nc?.close();
    await nats?.stop();
  });

  const send = (subject: string, id: string, opts: { timeoutMs?: number; expectStream?: string } = {}) => {
    const h = natsHeaders();
    h.set("chirp-event-id", id);
    if (opts.expectStream !== undefined) h.set("Nats-Expected-Stream", opts.expectStream);
    return publisher.publish(subject, new TextEncoder().encode(id), { msgID: id, headers: h, timeoutMs: opts.timeoutMs ?? 2000 });
  };

  it("hands each publish its own acknowledgement, stores them in the order made, and reports a repeated id as a duplicate", async () => {
    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => send("p.a", `a-${i}`)));
    const seqs = acks.map((a) => a.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(50);
    expect(acks.every((a) => a.stream === "P" && a.duplicate !== true)).toBe(true);
    for (const [i, ack] of acks.entries()) {
      const stored = await jsm.streams.getMessage("P", { seq: ack.seq });
      expect(new TextDecoder().decode(stored!.data)).toBe(`a-${i}`);
      expect(stored!.header.get("Nats-Msg-Id")).toBe(`a-${i}`);
    }
    const again = await send("p.a", "a-7");
    expect(again).toMatchObject({ seq: acks[7]!.seq, duplicate: true });
  });

  it("rejects a subject no stream takes with NoStreamError, and a refused publish with PublishRefusedError", async () => {
    await expect(send("nowhere.x", "n-1")).rejects.toBeInstanceOf(NoStreamError);
    await expect(send("p.b", "r-1", { expectStream: "OTHER" })).rejects.toBeInstanceOf(PublishRefusedError);
  });

  it("times out a publish nobody acknowledges, and still delivers the next one's acknowledgement", async () => {
    // A plain subscriber takes the subject (so no 503) and never answers.
    const silent = nc.subscribe("quiet.x", { callback: () => {} });
    await nc.flush();
    const started = performance.now();
    await expect(send("quiet.x", "q-1", { timeoutMs: 150 })).rejects.toBeInstanceOf(PublishTimeoutError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    silent.unsubscribe();
    expect((await send("p.c", "c-1")).duplicate).not.toBe(true);
  });
});
