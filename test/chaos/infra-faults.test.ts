// Fault tests of the servers under the mesh (issue 12 item 1): the whole
// system as `npm start` runs it (private MariaDB replica sets, Redis, NATS, the
// topology manager, every service and the gateway) under a load of posts and
// home reads through the gateway, while a shard primary is killed with
// SIGKILL, nats-server is killed and started again, and Redis is flushed.
// After each: every acknowledged write is there, every timeline is complete,
// nothing is listed twice, and the error window is printed (support/workload.ts).
import type { KV } from "@nats-io/kv";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningInfra } from "../../devcluster/index.js";
import type { Mesh } from "../../devcluster/launch.js";
import { openTopologyKv, readTopology } from "../../lib/shard/topology.js";
import { gatewayApi } from "../e2e/support/api.js";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { meshLog } from "./support/mesh-log.js";
import { createWorkload, sleep, type Workload } from "./support/workload.js";

/**
 * How long the outages last. `npm test` runs short ones; `npm run chaos` the
 * long ones issue 22 asks for: Redis down 30 s, and NATS down past the
 * consumers' retry budget (10 deliveries, 1 s doubling to 60 s: about 4
 * minutes of retries). The same tests either way; only the durations differ.
 */
const REDIS_DOWN_S = Number(process.env["CHIRP_CHAOS_REDIS_DOWN_S"] ?? "3");
const NATS_DOWN_S = Number(process.env["CHIRP_CHAOS_NATS_DOWN_S"] ?? "0");

/** Acknowledged posts before each fault and after it (the workload's warm-up and recovery). */
const ACKS = { warmAcks: 10, recoveredAcks: 10 };

let system: TestSystem;
let infra: RunningInfra;
let mesh: Mesh;
let redis: Redis;
let nc: NatsConnection;
let kv: KV;
let workload: Workload;
const log = meshLog();

beforeAll(async () => {
  // Two members per set, not npm start's three: a spare would only keep rs0's writes flowing
  // while its old primary is away, which integration/failover.test.ts shows, and two more
  // mariadbd would slow every case here.
  // A cluster of its own (it kills and freezes servers); one process for the system, started
  // from the run's bundles: these faults are of the servers under it (process-faults has the mesh's).
  system = await startSystem({ cluster: "own", router: false, stdio: log.open() });
  infra = system.infra.own!;
  mesh = system.mesh;
  redis = new Redis(infra.redisUrl, { maxRetriesPerRequest: 1 });
  nc = await connectNats({ servers: infra.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  kv = await openTopologyKv(nc);
  workload = await createWorkload({ api: gatewayApi(() => mesh.gatewayUrl, "ci"), users: 12, followsEach: 4 });
}, 180_000);

afterAll(async () => {
  await nc?.close().catch(() => {});
  redis?.disconnect();
  await system?.stop();
  log.remove();
});

async function primaryOf(rs: string): Promise<string | undefined> {
  return (await readTopology(kv, "chirp"))?.topology.replicaSets.find((r) => r.name === rs)?.primary.name;
}

describe("faults of the servers, under load", () => {
  it("kill -9 of a shard primary: the manager fails over; nothing acknowledged is lost", { timeout: 240_000 }, async () => {
    log.showOnFailure();
    const rs = "rs0";
    const killed = (await primaryOf(rs))!;
    const report = await workload.run("kill -9 of rs0's primary", async () => {
      process.kill(infra.processes.find((p) => p.name === killed)!.pid, "SIGKILL");
      await eventually("failover published", async () => (await primaryOf(rs)) !== killed, { timeoutMs: 60_000, intervalMs: 100 });
      // With two members the promoted one has no replica to acknowledge its commits (semi-sync
      // never falls back: decision 24), so rs0's writes wait until the old primary is back as
      // its replica, as npm start's restart of a dead member brings it.
      await infra.restartMysqlMember(killed);
      await eventually(
        "the old primary rejoined as a replica",
        async () => {
          const set = (await readTopology(kv, "chirp"))?.topology.replicaSets.find((r) => r.name === rs);
          return set?.replicas.some((m) => m.name === killed) ?? false;
        },
        { timeoutMs: 90_000, intervalMs: 250 },
      );
    }, ACKS);
    // Writes to rs1's users went on; rs0's paused. Some posts failed unless none landed on rs0 in the window.
    expect(report.acked).toBeGreaterThan(0);
  });

  it(`nats-server killed and started again${NATS_DOWN_S > 0 ? ` after ${NATS_DOWN_S} s` : ""}: posts go on meanwhile, every event arrives once, nothing dead-lettered and forgotten`, { timeout: 180_000 + NATS_DOWN_S * 1000 }, async () => {
    log.showOnFailure();
    const report = await workload.run(`nats-server down${NATS_DOWN_S > 0 ? ` ${NATS_DOWN_S} s` : ""}`, async (load) => {
      process.kill(infra.processes.find((p) => p.name === "nats")!.pid, "SIGKILL");
      // Down for as long as it takes to acknowledge a few posts (they wait in the outbox), or
      // under `npm run chaos` for longer than the consumers' retry budget.
      await load.acks(10);
      await sleep(Math.max(0, NATS_DOWN_S * 1000));
      await infra.restartNats();
    }, { ...ACKS, consistentWithinMs: 120_000 });
    // The kill hit work in flight, and still every timeline completed (the checks above).
    expect(Object.values(report.inFlightAtFault).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it(`Redis down (frozen with SIGSTOP, its data kept) for ${REDIS_DOWN_S} s under load: nothing acknowledged is lost, reads recover, timelines complete`, { timeout: 240_000 + REDIS_DOWN_S * 1000 }, async () => {
    log.showOnFailure();
    const pid = infra.processes.find((p) => p.name === "redis")!.pid;
    // Frozen rather than killed: connections hang instead of being refused, so every Redis
    // call waits out its timeout (the harder case), and nothing is lost or reloaded.
    const report = await workload.run(`Redis down ${REDIS_DOWN_S} s`, async () => {
      process.kill(pid, "SIGSTOP");
      try {
        await sleep(REDIS_DOWN_S * 1000);
      } finally {
        process.kill(pid, "SIGCONT");
      }
    }, { ...ACKS, consistentWithinMs: 120_000 });
    expect(Object.values(report.inFlightAtFault).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    // Reads recover: every user's home timeline answers (and, above, is exactly what it should be).
    expect(report.reads).toBeGreaterThan(0);
  });

  it("FLUSHALL of Redis: timelines are rebuilt and fan-out goes on", { timeout: 180_000 }, async () => {
    log.showOnFailure();
    await workload.run("Redis FLUSHALL", async (load) => {
      await redis.flushall();
      await load.acks(10);
      await redis.flushall();
    }, ACKS);
  });
});
