// lib/events/nats-flush.ts against a private nats-server: publishes made in
// separate microtask checkpoints of one turn of the event loop leave in one
// socket write (counted at the connection's transport), where an unchanged
// connection writes each; every message still arrives, in order.
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coalesceFlushes } from "../../lib/events/nats-flush.js";
import { startTestNats, type TestNats } from "../support/nats.js";

/** Counts the socket writes of `nc` (its transport's send calls). */
function countWrites(nc: NatsConnection): () => number {
  const transport = (nc as unknown as { protocol: { transport: { send(frame: Uint8Array): void } } }).protocol.transport;
  const send = transport.send.bind(transport);
  let writes = 0;
  transport.send = (frame) => {
    writes++;
    send(frame);
  };
  return () => writes;
}

/** Five publishes, each after a microtask checkpoint (as acks of handlers resumed by different callbacks are). */
async function publishApart(nc: NatsConnection, subject: string): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve();
    nc.publish(subject, String(i));
  }
}

async function received(sub: Subscription, n: number): Promise<string[]> {
  const out: string[] = [];
  for await (const m of sub) {
    out.push(m.string());
    if (out.length === n) break;
  }
  return out;
}

describe("coalesceFlushes", () => {
  let nats: TestNats;
  const conns: NatsConnection[] = [];

  beforeAll(async () => {
    nats = await startTestNats();
  });

  afterAll(async () => {
    for (const nc of conns) await nc.close();
    await nats?.stop();
  });

  const open = async (): Promise<NatsConnection> => {
    const nc = await connect({ servers: nats.url });
    conns.push(nc);
    await nc.flush();
    return nc;
  };

  it("writes what one turn of the loop queued once, where nats.js wrote once per microtask checkpoint; every message arrives in order", async () => {
    const reader = await open();
    const plain = await open();
    const coalesced = await open();
    expect(coalesceFlushes(coalesced)).toBe(true);

    for (const [nc, subject, expected] of [
      [plain, "flush.plain", 5],
      [coalesced, "flush.coalesced", 1],
    ] as const) {
      const sub = reader.subscribe(subject, { max: 5 });
      await reader.flush();
      const writes = countWrites(nc);
      await publishApart(nc, subject);
      await new Promise((resolve) => setImmediate(resolve));
      expect(writes()).toBe(expected);
      expect(await received(sub, 5)).toEqual(["0", "1", "2", "3", "4"]);
    }
  });

  it("leaves a connection without flushPending as it is", () => {
    expect(coalesceFlushes({ protocol: {} } as unknown as NatsConnection)).toBe(false);
    expect(coalesceFlushes({} as unknown as NatsConnection)).toBe(false);
  });
});
