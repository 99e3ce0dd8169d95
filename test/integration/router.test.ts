// The shard router against a private cluster of real mariadbd (two replica
// sets, primary + semi-sync replica each) and nats-server: routing, replica
// reads bounded by lag, scatter, transactions, timeouts, overload, a primary
// switch published in the KV, and a replica set that goes away entirely.
import { existsSync } from "node:fs";
import { createServer, connect as connectTcp, type Server } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startLocalCluster, type RunningInfra } from "../../devcluster/index.js";
import type { HostPort } from "../../lib/shard/types.js";
import { serviceInfraEnv } from "../../devcluster/launch.js";
import { createLogger } from "../../lib/logger.js";
import { createMetrics, type Metrics } from "../../lib/metrics.js";
import { createServiceContext } from "../../lib/service-context.js";
import { meshAddresses } from "../../lib/service-config.js";
import { EnvReader } from "../../lib/config.js";
import { loadShardConfig } from "../../lib/shard/shard-config.js";
import { topologyFromEnv } from "../../lib/shard/config.js";
import { createShardRouter, type ShardRouter, type ShardRouterOptions } from "../../lib/shard/router.js";
import { openTopologyKv, publishTopology, type LiveTopology } from "../../lib/shard/topology.js";
import { eventually } from "../support/eventually.js";

const MAX_LAG_MS = 1000;

let cluster: RunningInfra;
let router: ShardRouter;
let metrics: Metrics;
let heartbeats: Heartbeats;
const extraRouters: ShardRouter[] = [];

beforeAll(async () => {
  cluster = await startLocalCluster({ ephemeral: true, log: () => {} });
  await ensureHeartbeatTables();
  heartbeats = startHeartbeats();
  metrics = createMetrics("router-test");
  router = await createShardRouter({ ...envTopology(), maxReplicaLagMs: MAX_LAG_MS, metrics });
});

afterAll(async () => {
  for (const r of extraRouters) await r.close();
  await router?.close();
  await heartbeats?.stop();
  await cluster?.stop();
});

/** The topology and account a service process gets, through the same env vars. */
function envTopology(): { topology: LiveTopology; credentials: ShardRouterOptions["credentials"] } {
  return topologyFromEnv(serviceInfraEnv(cluster), loadShardConfig("local"));
}

async function newRouter(opts: Partial<ShardRouterOptions> = {}): Promise<ShardRouter> {
  const r = await createShardRouter({ ...envTopology(), maxReplicaLagMs: MAX_LAG_MS, ...opts });
  extraRouters.push(r);
  return r;
}

function admin(addr: HostPort, database?: string): Promise<Connection> {
  const { user, password } = cluster.mysql.adminUser;
  return createConnection({
    host: addr.host,
    port: addr.port,
    user,
    password,
    ...(database ? { database } : {}),
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
}

async function asAdmin<T>(addr: HostPort, fn: (c: Connection) => Promise<T>, database?: string): Promise<T> {
  const c = await admin(addr, database);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function replicaSet(name: string) {
  const rs = cluster.mysql.replicaSets.find((r) => r.name === name);
  if (!rs) throw new Error(`no replica set ${name}`);
  return { primary: rs.primary, replica: rs.replicas[0]! };
}

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectError);
    return (err as ConnectError).code;
  }
}

/**
 * 0002_heartbeat.sql creates the table; should the migration be missing, the
 * test creates it itself so the router's lag contract can still be checked.
 */
async function ensureHeartbeatTables(): Promise<void> {
  const migrated = existsSync(new URL("../../lib/db/migrations/0002_heartbeat.sql", import.meta.url));
  for (const shard of cluster.mysql.shards) {
    await asAdmin(replicaSet(shard.replicaSet).primary, async (c) => {
      if (!migrated) {
        await c.query("CREATE TABLE IF NOT EXISTS heartbeat (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, ts DATETIME(6) NOT NULL)");
      }
      await c.query("INSERT INTO heartbeat (id, ts) VALUES (1, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE ts = VALUES(ts)");
    }, shard.database);
  }
}

interface Heartbeats {
  /** Where replica set `rs`'s heartbeats are written from now on. */
  moveTo(rs: string, primary: HostPort): void;
  /**
   * No more heartbeats to `rs` until moveTo; resolves once a beat in flight
   * has landed. As the topology manager does before it demotes a primary:
   * the admin account writes through read_only, and semi-sync never falls
   * back (decision 24), so a beat written after the replica left would wait
   * for an ack forever.
   */
  pause(rs: string): Promise<void>;
  stop(): Promise<void>;
}

/** Plays the topology manager's part: heartbeat rows rewritten on each primary every 100 ms. */
function startHeartbeats(): Heartbeats {
  const targets = new Map<string, HostPort>(cluster.mysql.replicaSets.map((rs) => [rs.name, rs.primary]));
  const conns = new Map<string, Promise<Connection>>();
  let stopped = false;
  const beat = async (): Promise<void> => {
    await Promise.all(
      [...targets].map(async ([rs, addr]) => {
        const key = `${addr.host}:${addr.port}`;
        let conn = conns.get(key);
        if (!conn) {
          conn = admin(addr).then((c) => (c.on("error", () => conns.delete(key)), c));
          conns.set(key, conn);
        }
        try {
          const c = await conn;
          for (const shard of cluster.mysql.shards.filter((s) => s.replicaSet === rs)) {
            await c.query(`UPDATE ${shard.database}.heartbeat SET ts = UTC_TIMESTAMP(6) WHERE id = 1`);
          }
        } catch {
          conns.delete(key);
        }
      }),
    );
  };
  let current: Promise<void> = Promise.resolve();
  const loop = (async () => {
    while (!stopped) {
      current = beat();
      await current;
      await delay(100);
    }
  })();
  return {
    moveTo: (rs, primary) => void targets.set(rs, primary),
    pause: async (rs) => {
      targets.delete(rs);
      await current;
    },
    stop: async () => {
      stopped = true;
      await loop;
      for (const c of conns.values()) await c.then((x) => x.destroy(), () => {});
    },
  };
}

const insertUser = (id: string, bio = "") =>
  router
    .primaryForUser(id)
    .execute("INSERT INTO chirp.users (id, handle, email, password_hash, bio) VALUES (?, ?, ?, ?, ?)", [id, `u${id}`, `u${id}@example.com`, "x", bio]);

const userIds = Array.from({ length: 32 }, (_, i) => String(i + 1)).concat(["18446744073709551615", "1234567890123456789"]);

describe("shard router", () => {
  it("writes each user's row to the shard database the hash vindex names, on that shard's replica set", async () => {
    for (const id of userIds) await insertUser(id);
    // Vitess: hash(1) = 166b40b44aba4bd6, in -40.
    expect(router.shardForUser("1").name).toBe("-40");
    for (const shard of cluster.mysql.shards) {
      const rows = await asAdmin(replicaSet(shard.replicaSet).primary, async (c) => {
        const [r] = await c.query<RowDataPacket[]>(`SELECT id FROM ${shard.database}.users`);
        return r.map((x) => String(x["id"]));
      });
      const expected = userIds.filter((id) => router.shardForUser(id).name === shard.name);
      expect(expected.length, `ids on ${shard.name}`).toBeGreaterThan(0);
      expect(rows.sort()).toEqual(expected.sort());
    }
  });

  it("routes a handle's lookup row by binary_md5 of the lower-cased handle", async () => {
    await router.primaryForHandle("Alice_1").execute("INSERT INTO chirp.user_handles (handle_lower, user_id) VALUES (?, ?)", ["alice_1", "1"]);
    const shard = router.shardForHandle("ALICE_1");
    const found = await asAdmin(replicaSet(shard.replicaSet).primary, async (c) => {
      const [r] = await c.query<RowDataPacket[]>(`SELECT user_id FROM ${shard.database}.user_handles WHERE handle_lower = 'alice_1'`);
      return r.map((x) => String(x["user_id"]));
    });
    expect(found).toEqual(["1"]);
    // A replica within the lag bound may not have applied the insert yet (semi-sync waits for its receipt, not its apply).
    await eventually("the handle's row through readerForHandle", async () => {
      const rows = await router.readerForHandle("alice_1").query<{ user_id: string }>(
        "SELECT user_id FROM chirp.user_handles WHERE handle_lower = ?",
        ["alice_1"],
      );
      return rows.map((r) => r.user_id).join() === "1";
    });
  });

  it("scatters a batch get over every shard in parallel and returns every row", async () => {
    let inFlight = 0;
    let most = 0;
    const rows = await router.scatter(userIds, (id) => router.shardForUser(id), async (shard, ids) => {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        // primary(): the rows were just written, and a replica within the lag bound may not have them yet.
        return await router.primary(shard).query<{ id: string }>(
          `SELECT id FROM chirp.users WHERE id IN (${ids.map(() => "?").join(", ")})`,
          ids,
        );
      } finally {
        inFlight--;
      }
    });
    expect(rows.map((r) => r.id).sort()).toEqual([...userIds].sort());
    expect(most).toBe(4);
    expect(await router.scatter([], (id: string) => router.shardForUser(id), async () => [1])).toEqual([]);
  });

  it("reads from a replica once its measured lag is within the bound", async () => {
    const { replica } = replicaSet("rs1");
    const port = await eventually("reads on rs1's replica", async () => {
      const [row] = await router.reader("c0-").query<{ port: string }>("SELECT @@port AS port");
      return Number(row?.port) === replica.port ? row!.port : undefined;
    });
    expect(Number(port)).toBe(replica.port);
    const member = router.status().replicaSets.find((s) => s.name === "rs1")!.members.find((m) => m.role === "replica")!;
    expect(member.eligible).toBe(true);
    expect(member.lagMs).toBeLessThanOrEqual(MAX_LAG_MS);
    expect(await metrics.registry.getSingleMetricAsString("chirp_db_replica_lag_seconds")).toContain('member="rs1-b"');
  });

  it("never serves a read older than the bound when the replica stops applying; the primary serves it", async () => {
    const { primary, replica } = replicaSet("rs1");
    const id = userIds.find((x) => router.shardForUser(x).replicaSet === "rs1")!;
    const shard = router.shardForUser(id);
    await router.primaryForUser(id).execute("UPDATE chirp.users SET bio = ? WHERE id = ?", ["old", id]);
    await eventually("the replica serves the old bio", async () => {
      const [row] = await router.readerForUser(id).query<{ bio: string; port: string }>("SELECT bio, @@port AS port FROM chirp.users WHERE id = ?", [id]);
      return row?.bio === "old" && Number(row.port) === replica.port;
    });

    await asAdmin(replica, (c) => c.query("STOP SLAVE SQL_THREAD"));
    try {
      const stoppedAt = Date.now();
      await router.primaryForUser(id).execute("UPDATE chirp.users SET bio = ? WHERE id = ?", ["new", id]);
      // Read-your-writes through the primary, at once.
      const [mine] = await router.primaryForUser(id).query<{ bio: string }>("SELECT bio FROM chirp.users WHERE id = ?", [id]);
      expect(mine?.bio).toBe("new");

      // Once the bound has passed since the replica stopped, no read may see "old".
      await delay(Math.max(0, stoppedAt + MAX_LAG_MS + 20 - Date.now()));
      for (let i = 0; i < 15; i++) {
        const [row] = await router.reader(shard).query<{ bio: string; port: string }>("SELECT bio, @@port AS port FROM chirp.users WHERE id = ?", [id]);
        expect(row?.bio).toBe("new");
        expect(Number(row?.port)).toBe(primary.port);
        await delay(20);
      }
      const member = router.status().replicaSets.find((s) => s.name === "rs1")!.members.find((m) => m.role === "replica")!;
      expect(member.eligible).toBe(false);
    } finally {
      await asAdmin(replica, (c) => c.query("START SLAVE SQL_THREAD"));
    }
    // Caught up again, the replica serves again.
    await eventually("the caught-up replica serves the new bio", async () => {
      const [row] = await router.reader(shard).query<{ bio: string; port: string }>("SELECT bio, @@port AS port FROM chirp.users WHERE id = ?", [id]);
      return row?.bio === "new" && Number(row.port) === replica.port;
    });
  });

  it("runs a transaction on the primary and re-runs it once after a deadlock", async () => {
    const onX40 = userIds.filter((x) => router.shardForUser(x).name === "-40");
    const [a, b] = [onX40[0]!, onX40[1]!];
    const { primary } = replicaSet("rs0");
    const other = await admin(primary, "chirp_x40");
    try {
      // The other transaction holds b and is made heavier (more rows changed), so InnoDB picks ours as the victim.
      await other.query("START TRANSACTION");
      await other.query("UPDATE users SET bio = 'other' WHERE id = ?", [b]);
      for (let i = 0; i < 20; i++) await other.query("INSERT INTO likes (user_id, tweet_id) VALUES (?, ?)", [b, 1000 + i]);
      let attempts = 0;
      let otherUpdate: Promise<unknown> | undefined;
      const done = router.transaction("-40", async (tx) => {
        attempts++;
        await tx.execute("UPDATE chirp.users SET bio = ? WHERE id = ?", ["ours", a]);
        if (attempts === 1) {
          otherUpdate = other.query("UPDATE users SET bio = 'other' WHERE id = ?", [a]);
          await eventually("the other transaction waits for a lock", () =>
            asAdmin(primary, async (c) => {
              const [r] = await c.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'");
              return Number(r[0]?.["n"]) > 0;
            }),
          );
        }
        await tx.execute("UPDATE chirp.users SET bio = ? WHERE id = ?", ["ours", b]);
        const rows = await tx.query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.users WHERE id IN (?, ?) AND bio = 'ours'", [a, b]);
        return rows[0]?.n;
      });
      // Our first attempt lost the deadlock; the other transaction got a and commits, then our retry runs.
      await eventually("our first attempt started the other update", () => otherUpdate !== undefined && attempts >= 1);
      await otherUpdate;
      await other.query("COMMIT");
      expect(await done).toBe("2");
      expect(attempts).toBe(2);
    } finally {
      await other.end();
    }
    const [row] = await router.primary("-40").query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.users WHERE id IN (?, ?) AND bio = 'ours'", [a, b]);
    expect(row?.n).toBe("2");
  });

  it("rolls back when the function throws, and keeps the function's own error", async () => {
    const id = userIds.find((x) => router.shardForUser(x).name === "40-80")!;
    const mine = new ConnectError("no such thing", Code.NotFound);
    await expect(
      router.transaction("40-80", async (tx) => {
        await tx.execute("UPDATE chirp.users SET bio = 'rolled back' WHERE id = ?", [id]);
        throw mine;
      }),
    ).rejects.toBe(mine);
    const [row] = await router.primary("40-80").query<{ bio: string }>("SELECT bio FROM chirp.users WHERE id = ?", [id]);
    expect(row?.bio).not.toBe("rolled back");
  });

  it("sends deferred statements with the next statement's round trip or the COMMIT's; one that fails fails the transaction, which is rolled back", async () => {
    const [a, b] = userIds.filter((x) => router.shardForUser(x).name === "80-c0");
    const bio = (id: string) => router.primary("80-c0").query<{ bio: string; tweet_count: string }>("SELECT bio, tweet_count FROM chirp.users WHERE id = ?", [id]);
    const [before] = await bio(a!);
    // Deferred, then read in the same transaction: flushed before the read, which sees it.
    const seen = await router.transaction("80-c0", async (tx) => {
      tx.defer("UPDATE chirp.users SET bio = ? WHERE id = ?", ["it's \\ deferred; DROP TABLE users", a!]);
      tx.defer("UPDATE chirp.users SET tweet_count = tweet_count + ? WHERE id = ?", [2n, a!]);
      const rows = await tx.query<{ bio: string }>("SELECT bio FROM chirp.users WHERE id = ?", [a!]);
      // Deferred with nothing after: goes with the COMMIT.
      tx.defer("UPDATE chirp.users SET bio = ? WHERE id = ?", [Buffer.from("bytes"), b!]);
      return rows[0]?.bio;
    });
    expect(seen).toBe("it's \\ deferred; DROP TABLE users");
    expect((await bio(a!))[0]).toEqual({ bio: "it's \\ deferred; DROP TABLE users", tweet_count: String(Number(before!.tweet_count) + 2) });
    expect((await bio(b!))[0]?.bio).toBe("bytes");

    // A deferred duplicate key fails at the COMMIT's round trip: AlreadyExists, nothing of the transaction kept.
    const failed = router.transaction("80-c0", async (tx) => {
      tx.defer("UPDATE chirp.users SET bio = 'lost' WHERE id = ?", [a!]);
      tx.defer("INSERT INTO chirp.users (id, handle, email, password_hash) VALUES (?, 'dup', 'dup@example.com', 'x')", [a!]);
    });
    expect(await codeOf(failed)).toBe(Code.AlreadyExists);
    expect((await bio(a!))[0]?.bio).toBe("it's \\ deferred; DROP TABLE users");
  });

  it("answers a deferred read with the rows as the transaction left them, once it committed; a failed transaction rejects it", async () => {
    const [a] = userIds.filter((x) => router.shardForUser(x).name === "c0-");
    const [before] = await router.primary("c0-").query<{ tweet_count: string }>("SELECT tweet_count FROM chirp.users WHERE id = ?", [a!]);
    let read: Promise<Array<{ id: string; tweet_count: string; create_time: Date }>> | undefined;
    // Everything deferred: the read goes in the COMMIT's round trip, after the change it must see.
    await router.transaction("c0-", async (tx) => {
      tx.defer("UPDATE chirp.users SET tweet_count = tweet_count + 1 WHERE id = ?", [a!]);
      read = tx.deferRead("SELECT id, tweet_count, create_time FROM chirp.users WHERE id = ?", [a!]);
    });
    const [row] = await read!;
    // Typed as every read is: the id a string, the count as stored, the time a Date.
    expect(row).toMatchObject({ id: a!, tweet_count: String(Number(before!.tweet_count) + 1) });
    expect(row!.create_time).toBeInstanceOf(Date);

    // Deferred before a change: answered in that change's round trip.
    const early = await router.transaction("c0-", async (tx) => {
      const rows = tx.deferRead<{ n: number }>("SELECT 41 + 1 AS n");
      await tx.execute("UPDATE chirp.users SET tweet_count = tweet_count - 1 WHERE id = ?", [a!]);
      return rows;
    });
    expect(early.map((r) => Number(r.n))).toEqual([42]);

    let lost: Promise<unknown> | undefined;
    const failed = router.transaction("c0-", async (tx) => {
      lost = tx.deferRead("SELECT id FROM chirp.users WHERE id = ?", [a!]);
      tx.defer("INSERT INTO chirp.users (id, handle, email, password_hash) VALUES (?, 'dup', 'dup@example.com', 'x')", [a!]);
    });
    expect(await codeOf(failed)).toBe(Code.AlreadyExists);
    await expect(lost).rejects.toBeInstanceOf(ConnectError);
  });

  it("sends a transaction's BEGIN, and what was deferred, with its next change: one round trip, the change's own answer; a rerunnable one's with its COMMIT", async () => {
    const [a, b] = userIds.filter((x) => router.shardForUser(x).name === "80-c0");
    const [here] = await router.primary("80-c0").query<{ port: number }>("SELECT @@port AS port");
    const primary = cluster.mysql.replicaSets.map((r) => r.primary).find((p) => p.port === Number(here!.port))!;
    // The server's own record of what each connection sent: one row per command, a multi-statement query as one.
    const commands = (): Promise<string[]> =>
      asAdmin(primary, async (c) => {
        const [rows] = await c.query<RowDataPacket[]>(
          "SELECT CONVERT(argument USING utf8mb4) AS sql_text FROM mysql.general_log WHERE command_type IN ('Query', 'Execute') AND argument LIKE '%router-rt-marker%' AND argument NOT LIKE '%general_log%' ORDER BY event_time",
        );
        return rows.map((r) => String(r["sql_text"]));
      });
    await asAdmin(primary, (c) => c.query("SET GLOBAL log_output = 'TABLE', GLOBAL general_log = 1"));
    try {
      const changed = await router.transaction("80-c0", async (tx) => {
        const first = await tx.execute("UPDATE chirp.users SET bio = ? WHERE id = ?", ["router-rt-marker 1", a!]);
        tx.defer("UPDATE chirp.users SET bio = ? WHERE id = ?", ["router-rt-marker 2", b!]);
        const second = await tx.execute("UPDATE chirp.users SET bio = ? WHERE id IN (?, ?) AND bio LIKE 'router-rt-marker%'", ["router-rt-marker 3", a!, b!]);
        return [first.affectedRows, second.affectedRows];
      });
      expect(changed).toEqual([1, 2]);
      const sent = await commands();
      // BEGIN with the first change; the deferred statement with the second; the COMMIT alone.
      expect(sent).toHaveLength(2);
      expect(sent[0]).toMatch(/^START TRANSACTION;\s*UPDATE `?chirp_80xc0`?\.users SET bio = 'router-rt-marker 1'/);
      expect(sent[1]).toMatch(/^UPDATE `?chirp_80xc0`?\.users SET bio = 'router-rt-marker 2'.*;\s*UPDATE `?chirp_80xc0`?\.users SET bio = 'router-rt-marker 3'/s);

      // Rerunnable, with every statement deferred: the BEGIN goes with the COMMIT, one round trip,
      // and each deferred change's answer comes back with it.
      const whole = await router.transaction(
        "80-c0",
        async (tx) => {
          tx.defer("UPDATE chirp.users SET bio = ? WHERE id = ?", ["router-rt-marker 4", a!]);
          return { second: tx.deferExecute("UPDATE chirp.users SET bio = ? WHERE id IN (?, ?) AND bio = 'router-rt-marker 3'", ["router-rt-marker 5", a!, b!]) };
        },
        { rerunnable: true },
      );
      expect((await whole.second).affectedRows).toBe(1);
      const all = await commands();
      expect(all).toHaveLength(3);
      expect(all[2]).toMatch(/^START TRANSACTION;\s*UPDATE `?chirp_80xc0`?\.users SET bio = 'router-rt-marker 4'.*;\s*UPDATE .*'router-rt-marker 5'.*;\s*COMMIT$/s);

      // flush(): the BEGIN and a deferred read in one round trip, the rows there before the
      // transaction goes on; a flush with nothing pending sends nothing.
      const flushed = await router.transaction("80-c0", async (tx) => {
        const rows = tx.deferRead<{ bio: string }>("SELECT bio FROM chirp.users WHERE id = ? AND bio LIKE 'router-rt-marker%'", [b!]);
        await tx.flush();
        const [row] = await rows;
        await tx.flush();
        tx.defer("UPDATE chirp.users SET bio = ? WHERE id = ?", ["router-rt-marker 7", a!]);
        return row?.bio;
      });
      expect(flushed).toBe("router-rt-marker 5");
      const withFlush = await commands();
      expect(withFlush).toHaveLength(5);
      expect(withFlush[3]).toMatch(/^START TRANSACTION;\s*SELECT bio FROM `?chirp_80xc0`?\.users WHERE id = .* AND bio LIKE 'router-rt-marker%'$/s);
      expect(withFlush[4]).toMatch(/^UPDATE `?chirp_80xc0`?\.users SET bio = 'router-rt-marker 7'.*;\s*COMMIT$/s);
    } finally {
      await asAdmin(primary, (c) => c.query("SET GLOBAL general_log = 0, GLOBAL log_output = 'FILE'"));
      await asAdmin(primary, (c) => c.query("TRUNCATE TABLE mysql.general_log"));
    }
    const [row] = await router.primary("80-c0").query<{ bio: string }>("SELECT bio FROM chirp.users WHERE id = ?", [b!]);
    expect(row?.bio).toBe("router-rt-marker 5");

    // A rerunnable transaction whose deferred change fails: rolled back, nothing of it committed.
    let answer: Promise<unknown> | undefined;
    const refused = router.transaction(
      "80-c0",
      async (tx) => {
        tx.defer("UPDATE chirp.users SET bio = 'router-rt-marker 6' WHERE id = ?", [b!]);
        answer = tx.deferExecute("INSERT INTO chirp.users (id, handle, email, password_hash) VALUES (?, 'dup3', 'dup3@example.com', 'x')", [a!]);
      },
      { rerunnable: true },
    );
    expect(await codeOf(refused)).toBe(Code.AlreadyExists);
    await expect(answer).rejects.toBeInstanceOf(ConnectError);
    const [kept] = await router.primary("80-c0").query<{ bio: string }>("SELECT bio FROM chirp.users WHERE id = ?", [b!]);
    expect(kept?.bio).toBe("router-rt-marker 5");

    // A change that fails in the round trip that carried the BEGIN fails the transaction: rolled back, its own error.
    const failed = router.transaction("80-c0", async (tx) => {
      await tx.execute("INSERT INTO chirp.users (id, handle, email, password_hash) VALUES (?, 'dup2', 'dup2@example.com', 'x')", [a!]);
    });
    expect(await codeOf(failed)).toBe(Code.AlreadyExists);
  });

  it("maps a duplicate key to AlreadyExists", async () => {
    expect(await codeOf(insertUser("1"))).toBe(Code.AlreadyExists);
  });

  it("answers DeadlineExceeded when a statement outlives the query timeout, and stops it on the server", async () => {
    const r = await newRouter({ queryTimeoutMs: 200 });
    expect(await codeOf(r.primary("-40").query("SELECT SLEEP(5) AS slept"))).toBe(Code.DeadlineExceeded);
    // The server-side statement was killed, long before its 5 s were up.
    await eventually(
      "the statement gone from the server",
      () =>
        asAdmin(replicaSet("rs0").primary, async (c) => {
          const [rows] = await c.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(5)%'");
          return Number(rows[0]?.["n"]) === 0;
        }),
      { timeoutMs: 2000 },
    );
    const [ok] = await r.primary("-40").query<{ one: number }>("SELECT 1 AS one");
    expect(ok?.one).toBe(1);
  });

  it("fails fast when a member is overloaded: a full queue is ResourceExhausted, a long wait Unavailable", async () => {
    const r = await newRouter({ poolSize: 1, poolQueueLimit: 1, acquireTimeoutMs: 300 });
    const codes = await Promise.all([
      codeOf(r.primary("c0-").query("SELECT SLEEP(1) AS slept")),
      codeOf(r.primary("80-c0").query("SELECT 1")), // same member: waits, then times out
      codeOf(r.primary("c0-").query("SELECT 1")), // queue full
    ]);
    expect(codes).toEqual(["ok", Code.Unavailable, Code.ResourceExhausted]);
  });

  it("re-runs a write that could not reach its primary on the primary of a newer topology", async () => {
    const start = envTopology().topology;
    const real = start.replicaSets.find((s) => s.name === "rs1")!;
    const nobody = { name: "rs1-gone", host: "127.0.0.1", port: await freePort() };
    const own = createMetrics("router-test-failover");
    const r = await newRouter({
      metrics: own,
      topology: { ...start, replicaSets: start.replicaSets.map((s) => (s.name === "rs1" ? { ...s, primary: nobody } : s)) },
    });
    const id = userIds.find((x) => r.shardForUser(x).replicaSet === "rs1")!;
    // Refused at connect time: the statement never went out, so it waits for a new primary.
    const write = r.primaryForUser(id).execute("UPDATE chirp.users SET bio = ? WHERE id = ?", ["via new primary", id]);
    await delay(300);
    expect(r.applyTopology({ ...start, epoch: 1, replicaSets: start.replicaSets.map((s) => (s.name === "rs1" ? real : s)) })).toBe(true);
    expect(await write).toMatchObject({ affectedRows: 1 });
    expect(await own.registry.getSingleMetricAsString("chirp_db_failover_retries_total")).toMatch(/result="retried"[^}]*\} 1/);
  });

  it("does not re-run a statement the server may have started: a killed connection is Unavailable, with no retry", async () => {
    const own = createMetrics("router-test-killed");
    const r = await newRouter({ metrics: own });
    const id = userIds.find((x) => r.shardForUser(x).name === "c0-")!;
    const write = codeOf(r.primary("c0-").execute("UPDATE chirp.users SET bio = 'killed' WHERE id = ? AND SLEEP(3) = 0", [id]));
    const { primary } = replicaSet("rs1");
    await asAdmin(primary, async (c) => {
      const thread = await eventually("the update running on the primary", async () => {
        const [rows] = await c.query<RowDataPacket[]>("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE chirp_c0x.users SET bio = %'");
        return rows[0]?.["ID"] as string | undefined;
      });
      await c.query(`KILL CONNECTION ${Number(thread)}`);
    });
    expect(await write).toBe(Code.Unavailable);
    // Neither "retried" nor "gave_up": it never even waited for a new primary.
    expect(await own.registry.getSingleMetricAsString("chirp_db_failover_retries_total")).not.toContain("result=");
    const [row] = await r.primary("c0-").query<{ bio: string }>("SELECT bio FROM chirp.users WHERE id = ?", [id]);
    expect(row?.bio).not.toBe("killed");
  });

  it("follows a primary switch published in the KV; a write refused by the demoted primary lands on the new one", async () => {
    const { primary: oldPrimary, replica: newPrimary } = replicaSet("rs0");
    const nc: NatsConnection = await connectNats({ servers: cluster.natsUrl });
    try {
      const kv = await openTopologyKv(nc);
      const start = envTopology().topology;
      await publishTopology(kv, start);
      const watch = await router.followTopology(kv);
      try {
        // The manager's part, by hand: no more heartbeats to the old primary, demote it, let the replica catch up, promote it.
        await heartbeats.pause("rs0");
        await asAdmin(oldPrimary, (c) => c.query("SET GLOBAL read_only = ON"));
        const id = userIds.find((x) => router.shardForUser(x).name === "-40")!;
        const write = router.primaryForUser(id).execute("UPDATE chirp.users SET bio = ? WHERE id = ?", ["after switch", id]);
        const gtid = await asAdmin(oldPrimary, async (c) => {
          const [rows] = await c.query<RowDataPacket[]>("SELECT @@gtid_binlog_pos AS pos");
          return String(rows[0]?.["pos"]);
        });
        await asAdmin(newPrimary, async (c) => {
          const [rows] = await c.query<RowDataPacket[]>("SELECT MASTER_GTID_WAIT(?, 10) AS r", [gtid]);
          expect(Number(rows[0]?.["r"])).toBe(0);
          await c.query("STOP SLAVE");
          await c.query("RESET SLAVE ALL");
          await c.query("SET GLOBAL read_only = OFF");
        });
        heartbeats.moveTo("rs0", newPrimary);
        const lastBeatOnOld = Date.now();
        const rs0 = start.replicaSets.find((s) => s.name === "rs0")!;
        await publishTopology(kv, {
          ...start,
          epoch: 1,
          updateTime: new Date().toISOString(),
          replicaSets: start.replicaSets.map((s) => (s.name === "rs0" ? { name: "rs0", primary: rs0.replicas[0]!, replicas: [rs0.primary] } : s)),
        });

        expect(await write).toEqual({ affectedRows: 1, insertId: "0" });
        await eventually("the router on epoch 1", () => router.topology().epoch === 1);
        const onNew = await asAdmin(newPrimary, async (c) => {
          const [rows] = await c.query<RowDataPacket[]>("SELECT bio FROM chirp_x40.users WHERE id = ?", [id]);
          return rows[0]?.["bio"];
        });
        expect(onNew).toBe("after switch");
        const [where] = await router.primary("40-80").query<{ port: string }>("SELECT @@port AS port");
        expect(Number(where?.port)).toBe(newPrimary.port);
        // The demoted member replicates nothing: once its last heartbeat is older than the bound, reads leave it.
        await delay(Math.max(0, lastBeatOnOld + MAX_LAG_MS + 150 - Date.now()));
        const [read] = await router.reader("-40").query<{ port: string }>("SELECT @@port AS port");
        expect(Number(read?.port)).toBe(newPrimary.port);
        expect(await metrics.registry.getSingleMetricAsString("chirp_db_failover_retries_total")).toMatch(
          /chirp_db_failover_retries_total\{replica_set="rs0",result="retried"[^}]*\} 1/,
        );
        // An older document changes nothing.
        expect(router.applyTopology({ ...start, epoch: 1 })).toBe(false);
        expect(router.topology().epoch).toBe(1);
      } finally {
        watch.stop();
      }
    } finally {
      await nc.drain();
    }
  });

  it("a service context serves from the env topology while NATS is away, and follows the KV once NATS answers", async () => {
    // NATS_URL names a port where nothing listens yet; later a relay to the real server opens there.
    const port = await freePort();
    const real = new URL(cluster.natsUrl);
    const env = { ...serviceInfraEnv(cluster), NATS_URL: `nats://127.0.0.1:${port}`, CHIRP_DB_FAILOVER_WAIT_MS: "0" };
    const ctx = await createServiceContext({
      env,
      name: "user",
      addresses: meshAddresses(new EnvReader({})),
      log: createLogger("user", "silent"),
      metrics: createMetrics("user"),
    });
    let relay: Server | undefined;
    try {
      const [row] = await ctx.router.primary("c0-").query<{ one: number }>("SELECT 1 AS one");
      expect(row?.one).toBe(1);
      expect(ctx.router.topology().epoch).toBe(0);
      await delay(1200); // a failed attempt or two
      relay = createServer((socket) => {
        const upstream = connectTcp(Number(real.port), real.hostname);
        socket.pipe(upstream).pipe(socket);
        socket.on("error", () => upstream.destroy());
        upstream.on("error", () => socket.destroy());
      });
      await new Promise<void>((resolve) => relay!.listen(port, "127.0.0.1", resolve));
      await ctx.topologyFollower!.attached();
      // The KV holds epoch 1 from the switch above.
      expect(ctx.router.topology().epoch).toBe(1);
    } finally {
      await ctx.close();
      relay?.close();
    }
  });

  // Last: it kills a replica set.
  it("answers Unavailable naming the shard when every member of its replica set is down; the other set keeps serving", async () => {
    const r = await newRouter({ failoverWaitMs: 300, healthIntervalMs: 100 });
    await r.primary("c0-").query("SELECT 1"); // warm pool connections, now about to break
    for (const p of cluster.processes.filter((x) => x.name.startsWith("rs1-"))) process.kill(p.pid, "SIGKILL");
    await delay(100);
    for (const [shard, read] of [
      ["c0-", false],
      ["c0-", true],
      ["80-c0", true],
    ] as const) {
      const client = read ? r.reader(shard) : r.primary(shard);
      const err = await client.query("SELECT 1").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unavailable);
      expect((err as ConnectError).rawMessage).toBe(`shard ${shard} unavailable`);
    }
    const [row] = await r.primary("40-80").query<{ one: number }>("SELECT 1 AS one");
    expect(row?.one).toBe(1);
    const rs1 = r.status().replicaSets.find((s) => s.name === "rs1")!;
    await eventually("every rs1 member unreachable", () => r.status().replicaSets.find((s) => s.name === "rs1")!.members.every((m) => m.reachable === false));
    expect(rs1.members).toHaveLength(2);
  });
});
