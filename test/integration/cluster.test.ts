// The local cluster against real mariadbd, redis-server and nats-server
// processes: replication, semi-sync, grants, migrations, Redis, JetStream,
// and a clean stop.
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect as connectNats } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataDirLockedError, MigrationError, acquireDataDirLock, migrate, replicaSetEnvVar, resolveInfra, startLocalCluster, type RunningInfra } from "../../devcluster/index.js";
import type { HostPort, MysqlCredentials } from "../../lib/shard/types.js";
import { eventually } from "../support/eventually.js";

let cluster: RunningInfra;
const logLines: string[] = [];

beforeAll(async () => {
  cluster = await startLocalCluster({ ephemeral: true, log: (line) => logLines.push(line) });
});

afterAll(async () => {
  await cluster?.stop();
});

function connectAs(addr: HostPort, creds: MysqlCredentials, database?: string): Promise<Connection> {
  return createConnection({
    host: addr.host,
    port: addr.port,
    user: creds.user,
    password: creds.password,
    ...(database ? { database } : {}),
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
}

async function using<T>(conn: Promise<Connection>, fn: (c: Connection) => Promise<T>): Promise<T> {
  const c = await conn;
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function rs(name: string) {
  const found = cluster.mysql.replicaSets.find((r) => r.name === name);
  if (!found) throw new Error(`no replica set ${name}`);
  return found;
}

describe("local cluster", () => {
  it("describes two replica sets of primary + replica and four shards", () => {
    expect(cluster.mysql.replicaSets.map((r) => [r.name, r.replicas.length])).toEqual([
      ["rs0", 1],
      ["rs1", 1],
    ]);
    expect(cluster.mysql.shards.map((s) => s.database)).toEqual(["chirp_x40", "chirp_40x80", "chirp_80xc0", "chirp_c0x"]);
    expect(cluster.processes).toHaveLength(6);
    const json = JSON.parse(JSON.stringify(cluster)) as Record<string, unknown>;
    expect(Object.keys(json).sort()).toEqual(["mysql", "natsUrl", "redisUrl"]);
  });

  it("replicates an app-user write from a shard primary to its replica", async () => {
    const { primary, replicas } = rs("rs1");
    const id = String(BigInt(Date.now()) * 1000n + 7n);
    await using(connectAs(primary, cluster.mysql.appUser, "chirp_c0x"), (c) =>
      c.execute("INSERT INTO users (id, handle, email, password_hash) VALUES (?, ?, ?, ?)", [id, "alice", "a@example.com", "x"]),
    );
    const handle = await using(connectAs(replicas[0]!, cluster.mysql.appUser, "chirp_c0x"), (c) =>
      eventually("the row on the replica", async () => {
        const [rows] = await c.execute<RowDataPacket[]>("SELECT handle FROM users WHERE id = ?", [id]);
        return rows[0]?.["handle"] as string | undefined;
      }),
    );
    expect(handle).toBe("alice");
  });

  it("runs semi-synchronous replication on both primaries", async () => {
    for (const name of ["rs0", "rs1"]) {
      const status = await using(connectAs(rs(name).primary, cluster.mysql.adminUser), async (c) => {
        const [rows] = await c.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'");
        return Object.fromEntries(rows.map((r) => [r["Variable_name"], r["Value"]]));
      });
      expect(status["Rpl_semi_sync_master_status"]).toBe("ON");
      expect(Number(status["Rpl_semi_sync_master_clients"])).toBeGreaterThanOrEqual(1);
    }
  });

  it("gives the app user data access only", async () => {
    const { primary, replicas } = rs("rs0");
    await using(connectAs(primary, cluster.mysql.appUser, "chirp_x40"), async (c) => {
      await expect(c.query("CREATE TABLE nope (id INT PRIMARY KEY)")).rejects.toMatchObject({ code: "ER_TABLEACCESS_DENIED_ERROR" });
      await expect(c.query("DROP TABLE users")).rejects.toMatchObject({ code: "ER_TABLEACCESS_DENIED_ERROR" });
      await expect(c.query("CREATE DATABASE nope")).rejects.toMatchObject({ code: "ER_DBACCESS_DENIED_ERROR" });
      const [rows] = await c.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM users");
      expect(rows[0]?.["n"]).toBeDefined();
    });
    // The shard databases of the other replica set do not exist here.
    await expect(connectAs(primary, cluster.mysql.appUser, "chirp_c0x")).rejects.toMatchObject({
      code: "ER_DBACCESS_DENIED_ERROR",
    });
    // Replicas refuse writes.
    await using(connectAs(replicas[0]!, cluster.mysql.appUser, "chirp_x40"), async (c) => {
      await expect(
        c.execute("INSERT INTO likes (user_id, tweet_id) VALUES (?, ?)", ["1", "2"]),
      ).rejects.toMatchObject({ code: "ER_OPTION_PREVENTS_STATEMENT" });
    });
  });

  it("applied the migrations on every shard, replicated to the replicas", async () => {
    for (const shard of cluster.mysql.shards) {
      const set = rs(shard.replicaSet);
      for (const member of [set.primary, ...set.replicas]) {
        const versions = await using(connectAs(member, cluster.mysql.appUser, shard.database), (c) =>
          eventually(`migrations applied on ${member.name}`, async () => {
            const [rows] = await c.query<RowDataPacket[]>("SELECT version FROM schema_migrations ORDER BY version");
            return rows.length > 0 ? rows.map((r) => Number(r["version"])) : undefined;
          }),
        );
        expect(versions[0]).toBe(1);
      }
    }
  });

  it("re-running migrations applies nothing", async () => {
    const again = await migrate({ mysql: cluster.mysql });
    expect(again.applied).toBe(0);
    expect(again.shards).toHaveLength(4);
  });

  it("rejects an applied migration that changed or vanished", async () => {
    const dir = await mkdtemp(join(tmpdir(), "chirp-mig-"));
    try {
      const shards = [{ name: "-40", replicaSet: "rs0", database: "chirp_migtest" }];
      await writeFile(join(dir, "0001_first.sql"), "CREATE TABLE t1 (id BIGINT UNSIGNED NOT NULL PRIMARY KEY);\n");
      expect((await migrate({ mysql: cluster.mysql, dir, shards })).applied).toBe(1);

      await writeFile(join(dir, "0002_second.sql"), "CREATE TABLE t2 (id BIGINT UNSIGNED NOT NULL PRIMARY KEY);\n");
      expect((await migrate({ mysql: cluster.mysql, dir, shards })).shards[0]?.applied).toEqual([2]);

      await writeFile(join(dir, "0001_first.sql"), "CREATE TABLE t1 (id BIGINT NOT NULL PRIMARY KEY);\n");
      await expect(migrate({ mysql: cluster.mysql, dir, shards })).rejects.toMatchObject({
        code: "MIGRATION_CHECKSUM_MISMATCH",
      });

      await rm(join(dir, "0001_first.sql"));
      const missing = migrate({ mysql: cluster.mysql, dir, shards });
      await expect(missing).rejects.toBeInstanceOf(MigrationError);
      await expect(missing).rejects.toMatchObject({ code: "MIGRATION_MISSING" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("serves Redis", async () => {
    const redis = new Redis(cluster.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      expect(await redis.ping()).toBe("PONG");
      await redis.set("cluster-test:k", "v");
      expect(await redis.get("cluster-test:k")).toBe("v");
    } finally {
      redis.disconnect();
    }
  });

  it("serves NATS with JetStream", async () => {
    const nc = await connectNats({ servers: cluster.natsUrl });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "CLUSTER_TEST", subjects: ["clustertest.>"] });
      const js = jetstream(nc);
      const ack = await js.publish("clustertest.hello", new TextEncoder().encode("hi"), { msgID: "m1" });
      expect(ack.stream).toBe("CLUSTER_TEST");
      expect(ack.seq).toBe(1);
      const dup = await js.publish("clustertest.hello", new TextEncoder().encode("hi"), { msgID: "m1" });
      expect(dup.duplicate).toBe(true);
    } finally {
      await nc.drain();
    }
  });

  it("refuses a second start on the same data dir", () => {
    expect(cluster.dataDir).not.toBeNull();
    let caught: unknown;
    try {
      acquireDataDirLock(cluster.dataDir!).release();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DataDirLockedError);
    expect((caught as DataDirLockedError).pid).toBe(process.pid);
  });

  it("uses servers given by URL and starts nothing", async () => {
    const admin = cluster.mysql.adminUser;
    const env: Record<string, string> = {
      REDIS_URL: cluster.redisUrl,
      NATS_URL: cluster.natsUrl,
      MYSQL_APP_USER: cluster.mysql.appUser.user,
      MYSQL_APP_PASSWORD: cluster.mysql.appUser.password,
    };
    for (const set of cluster.mysql.replicaSets) {
      const hosts = [set.primary, ...set.replicas].map((m) => `${m.host}:${m.port}`).join(",");
      env[replicaSetEnvVar(set.name)] = `mysql://${admin.user}:${encodeURIComponent(admin.password)}@${hosts}`;
    }
    const lines: string[] = [];
    const given = await resolveInfra({ env, log: (l) => lines.push(l) });
    try {
      expect(given.processes).toEqual([]);
      expect(given.dataDir).toBeNull();
      expect(given.migrations.applied).toBe(0);
      expect(given.toJSON()).toEqual(cluster.toJSON());
    } finally {
      await given.stop();
    }
  });

  it("logged its progress", () => {
    expect(logLines.some((l) => /^replication rs0 ok/.test(l))).toBe(true);
    expect(logLines.some((l) => /^migrations applied [1-9]\d* \(versions [0-9, ]+ on 4 shards\)/.test(l))).toBe(true);
  });

  // Last: everything above needs the cluster.
  it("stop() leaves no server process and removes the test data dir", async () => {
    const pids = cluster.processes.map((p) => p.pid);
    await cluster.stop();
    for (const pid of pids) expect(isRunning(pid), `pid ${pid}`).toBe(false);
    expect(existsSync(cluster.dataDir!)).toBe(false);
  });
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
