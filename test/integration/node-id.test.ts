import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { leaseNodeId, NODE_ID_BUCKET, openNodeIdBucket } from "../../lib/node-id.js";
import { eventually } from "../support/eventually.js";
import { startTestNats, type TestNats } from "../support/nats.js";

// Node ids are leased in a JetStream KV bucket so that no two live processes
// mint Snowflake ids with the same node number.
describe("node id leases", () => {
  let nats: TestNats;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startTestNats();
    nc = await connect({ servers: nats.url });
  });

  afterAll(async () => {
    await nc?.drain();
    await nats?.stop();
  });

  it("never gives the same id to two holders", async () => {
    const kv = await openNodeIdBucket(nc, 2000);
    const leases = await Promise.all(Array.from({ length: 8 }, (_, i) => leaseNodeId(kv, { owner: `p${i}`, size: 8, ttlMs: 2000 })));
    expect(new Set(leases.map((l) => l.nodeId)).size).toBe(8);
    await expect(leaseNodeId(kv, { owner: "one too many", size: 8, ttlMs: 2000 })).rejects.toThrow(/all 8 node ids/);
    await Promise.all(leases.map((l) => l.release()));
  });

  it("keeps a lease alive past its ttl by renewing it, and frees it on release", async () => {
    const kv = await openNodeIdBucket(nc, 1000);
    const lease = await leaseNodeId(kv, { owner: "renewer", size: 1, ttlMs: 1000 });
    // Three lifetimes later the number is still ours...
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      await expect(leaseNodeId(kv, { owner: "thief", size: 1, ttlMs: 1000 })).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 250));
    }
    // ...and taken at once after a clean release.
    await lease.release();
    const next = await leaseNodeId(kv, { owner: "next", size: 1, ttlMs: 1000 });
    expect(next.nodeId).toBe(lease.nodeId);
    await next.release();
  });

  it("lets another process take the id once a dead holder's lease expires, and the holder stops minting before that by its own clock", async () => {
    const kv = await openNodeIdBucket(nc, 1000);
    const doomed = await connect({ servers: nats.url });
    const lease = await leaseNodeId(await openNodeIdBucket(doomed, 1000), { owner: "doomed", size: 1, ttlMs: 1000 });
    expect(lease.fresh()).toBe(true);
    await doomed.close(); // the holder's NATS is gone: no renewals, no release
    const taken = await eventually("the heir takes the id", () => leaseNodeId(kv, { owner: "heir", size: 1, ttlMs: 1000 }), { timeoutMs: 5000, intervalMs: 20 });
    // By the time anyone could take the number, the holder had stopped minting with it.
    expect(lease.fresh()).toBe(false);
    const lost = await lease.lost;
    expect(lost).toBeInstanceOf(Error);
    expect(taken.nodeId).toBe(lease.nodeId);
    await taken.release();
  });

  it("raises a shorter max age of an existing bucket to the lease asked for, and never lowers it", async () => {
    const kvm = await jetstreamManager(nc);
    const maxAge = async (): Promise<number> => (await kvm.streams.info(`KV_${NODE_ID_BUCKET}`)).config.max_age / 1_000_000;
    await openNodeIdBucket(nc, 2000);
    expect(await maxAge()).toBe(2000);
    await openNodeIdBucket(nc, 1000);
    expect(await maxAge()).toBe(2000);
    await openNodeIdBucket(nc, 3000);
    expect(await maxAge()).toBe(3000);
  });
});
