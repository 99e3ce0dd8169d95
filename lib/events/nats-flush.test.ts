import { ProtocolHandler } from "@nats-io/nats-core/internal";
import type { NatsConnection } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { coalesceFlushes } from "./nats-flush.js";

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function fakeConnection(): { nc: NatsConnection; writes: () => number } {
  let writes = 0;
  const protocol = {
    flushPending() {
      writes++;
    },
  };
  return { nc: { protocol } as unknown as NatsConnection, writes: () => writes };
}

describe("coalesceFlushes", () => {
  it("writes what a turn of the loop queued once, at its end", async () => {
    const { nc, writes } = fakeConnection();
    expect(coalesceFlushes(nc)).toBe(true);
    const flush = (nc as unknown as { protocol: { flushPending(): void } }).protocol;
    flush.flushPending();
    flush.flushPending();
    await Promise.resolve();
    flush.flushPending();
    // Microtask checkpoints (what nats.js flushed on) no longer write.
    expect(writes()).toBe(0);
    await turn();
    expect(writes()).toBe(1);
    // The next turn's commands get a write of their own.
    flush.flushPending();
    await turn();
    expect(writes()).toBe(2);
  });

  it("leaves a connection without flushPending as it is", () => {
    expect(coalesceFlushes({ protocol: {} } as unknown as NatsConnection)).toBe(false);
    expect(coalesceFlushes({} as unknown as NatsConnection)).toBe(false);
  });

  it("finds flushPending where the pinned nats.js keeps it", () => {
    expect(typeof (ProtocolHandler.prototype as unknown as { flushPending?: unknown }).flushPending).toBe("function");
  });
});
