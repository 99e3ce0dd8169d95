// Private mariadbd members: initialise, start, create users, wire up
// GTID-based semi-synchronous replication.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Connection, RowDataPacket } from "mysql2/promise";
import { quoteIdent, withMysql } from "../lib/db/mysql-client.js";
import { mysqlErrorCode } from "../lib/db/mysql-errors.js";
import { CHANGE_MASTER, REPLICA_NET_TIMEOUT_S, SEMI_SYNC_TIMEOUT_MS } from "../lib/shard/replication.js";
import {
  ServerStartError,
  isAddressInUse,
  pollUntil,
  reapOrphan,
  spawnServer,
  waitReady,
  type ClusterLog,
  type ManagedProcess,
} from "./process.js";
import { freePort } from "./ports.js";
import type { Reaper } from "./reaper.js";
import type { MemberAddress, MysqlCredentials } from "../lib/shard/types.js";

const run = promisify(execFile);

export const ADMIN_USER = "chirp_admin";
export const REPL_USER = "chirp_repl";
export const APP_USER = "chirp_app";


const READY_TIMEOUT_MS = 60_000;
const REPLICATION_TIMEOUT_MS = 30_000;

export interface MariadbBinaries {
  mariadbd: string;
  installDb: string;
}

export interface MysqlSecrets {
  admin: MysqlCredentials;
  repl: MysqlCredentials;
  app: MysqlCredentials;
}

export interface MemberSpec {
  name: string;
  replicaSet: string;
  /** Unique within the cluster; used as MariaDB server_id. */
  serverId: number;
  /** The member's folder: data/ (the datadir), log, pid file, socket. */
  dir: string;
  /** Shard databases on this replica set: the app user gets DML on these. */
  databases: readonly string[];
}

export interface MemberContext {
  bins: MariadbBinaries;
  secrets: MysqlSecrets;
  log: ClusterLog;
  reaper?: Reaper | undefined;
  /** Test clusters trade crash durability for speed. */
  ephemeral: boolean;
}

export interface RunningMember {
  spec: MemberSpec;
  address: MemberAddress;
  proc: ManagedProcess;
}

const SECRETS_FILE = "secrets.json";

/**
 * Passwords for the local accounts, generated on first init and kept in a
 * 0600 file beside the member folders so restarts reuse them.
 */
export async function loadOrCreateSecrets(mysqlDir: string, memberDirs: readonly string[]): Promise<MysqlSecrets> {
  const path = join(mysqlDir, SECRETS_FILE);
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as MysqlSecrets;
    if (parsed.admin?.password && parsed.repl?.password && parsed.app?.password) return parsed;
    throw new Error(`${path} is incomplete`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const initialised = memberDirs.filter((d) => existsSync(join(d, "data")));
  if (initialised.length > 0) {
    throw new Error(
      `${path} is missing but ${initialised.join(", ")} already hold data: the passwords are lost; ` +
        `delete the data dir to start over`,
    );
  }
  const secret = (): string => randomBytes(18).toString("base64url");
  const secrets: MysqlSecrets = {
    admin: { user: ADMIN_USER, password: secret() },
    repl: { user: REPL_USER, password: secret() },
    app: { user: APP_USER, password: secret() },
  };
  await mkdir(mysqlDir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
  return secrets;
}

/**
 * Initialises (first run only), starts and readies one member. `port` is tried
 * first when given (a restarted member keeps its address), a free one otherwise.
 */
export async function startMember(spec: MemberSpec, ctx: MemberContext, preferredPort?: number): Promise<RunningMember> {
  const datadir = join(spec.dir, "data");
  await mkdir(spec.dir, { recursive: true });
  if (!existsSync(datadir)) await initialiseDatadir(spec, ctx);
  await reapOrphan(join(spec.dir, "mariadbd.pid"), datadir, ctx.log);
  await ensureTmpdir(spec.dir);

  for (let attempt = 1; ; attempt++) {
    const port = attempt === 1 && preferredPort !== undefined ? preferredPort : await freePort();
    ctx.log(`starting ${spec.name} on 127.0.0.1:${port}...`);
    const proc = spawnServer({
      name: spec.name,
      command: ctx.bins.mariadbd,
      args: serverArgs(spec, port, ctx.ephemeral),
      logPath: join(spec.dir, "mariadbd.log"),
      reaper: ctx.reaper,
      stopTimeoutMs: 30_000,
    });
    const address: MemberAddress = { name: spec.name, host: "127.0.0.1", port };
    try {
      await waitReady({
        proc,
        timeoutMs: READY_TIMEOUT_MS,
        probe: () => withMysql(address, ctx.secrets.admin, async (c) => (await c.query("SELECT 1"), true), {
          connectTimeoutMs: 2_000,
        }),
        isFatal: (err) => mysqlErrorCode(err) === "ER_ACCESS_DENIED_ERROR",
      });
      await ensureUsers(address, spec, ctx.secrets);
      return { spec, address, proc };
    } catch (err) {
      await proc.stop();
      if (attempt < 3 && isAddressInUse(err)) continue;
      throw err;
    }
  }
}

async function initialiseDatadir(spec: MemberSpec, ctx: MemberContext): Promise<void> {
  const target = join(spec.dir, "data");
  const staging = join(spec.dir, "data.init");
  const bootstrap = join(spec.dir, "bootstrap.sql");
  ctx.log(`initialising ${spec.name} in ${target}...`);
  await rm(staging, { recursive: true, force: true });
  const tmp = await ensureTmpdir(spec.dir);
  // Runs inside install-db's bootstrap server: FLUSH PRIVILEGES loads the
  // grant tables so account statements work there. Holds the admin password,
  // so 0600 and deleted right after.
  const admin = ctx.secrets.admin;
  const sql = [
    "FLUSH PRIVILEGES;",
    ...["127.0.0.1", "localhost"].flatMap((host) => [
      `CREATE USER '${admin.user}'@'${host}' IDENTIFIED BY ${sqlString(admin.password)};`,
      `GRANT ALL PRIVILEGES ON *.* TO '${admin.user}'@'${host}' WITH GRANT OPTION;`,
    ]),
    "",
  ].join("\n");
  await writeFile(bootstrap, sql, { mode: 0o600 });
  try {
    await run(
      ctx.bins.installDb,
      [
        "--no-defaults",
        ...runAsRootArgs(),
        `--datadir=${staging}`,
        "--auth-root-authentication-method=socket",
        "--skip-test-db",
        "--skip-name-resolve",
        `--extra-file=${bootstrap}`,
        `--tmpdir=${tmp}`,
        ...innodbSizing(),
      ],
      { env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", LC_ALL: "C" }, maxBuffer: 8 * 1024 * 1024 },
    );
  } catch (err) {
    const out = err as { stdout?: string; stderr?: string };
    const tail = `${out.stdout ?? ""}\n${out.stderr ?? ""}`.trim().split("\n").slice(-15).join("\n");
    throw new ServerStartError(`${spec.name} (mariadb-install-db)`, "initialisation failed", tail, { cause: err });
  } finally {
    await rm(bootstrap, { force: true });
  }
  // Only a complete datadir gets the final name, so an interrupted init is redone.
  await rename(staging, target);
}

function serverArgs(spec: MemberSpec, port: number, ephemeral: boolean): string[] {
  const datadir = join(spec.dir, "data");
  return [
    "--no-defaults", // never read the machine's /etc/mysql config
    ...runAsRootArgs(),
    `--datadir=${datadir}`,
    "--skip-networking=0",
    "--bind-address=127.0.0.1",
    `--port=${port}`,
    `--socket=${socketPath(spec.dir)}`,
    `--pid-file=${join(spec.dir, "mariadbd.pid")}`,
    `--log-error=${join(spec.dir, "mariadbd.log")}`,
    `--tmpdir=${join(spec.dir, "tmp")}`,
    "--skip-name-resolve",
    // Replication: every member can be primary or replica; the role is set at
    // run time (read_only, semi-sync side) so a failover needs no restart.
    `--server-id=${spec.serverId}`,
    "--log-bin=binlog",
    "--relay-log=relay-bin",
    "--binlog-format=ROW",
    "--log-slave-updates=ON",
    "--gtid-strict-mode=ON",
    "--skip-slave-start",
    "--read-only=ON",
    // Crash recovery as a replica (MDEV-21117; since 10.6.19/10.11.9 switched
    // on by init_rpl_role=SLAVE, MDEV-33465, no longer by the semi-sync slave
    // setting): binlog transactions that were never committed in the engine
    // (with AFTER_SYNC: not acknowledged to any client) are rolled back and cut
    // from the binlog instead of being committed. A former primary coming
    // back after kill -9 then holds nothing its promoted replica lacks and can
    // rejoin as its replica. Harmless on a member that stays primary: the
    // start picks the member whose history contains the others' (local-mysql).
    "--init-rpl-role=SLAVE",
    // Semi-sync never falls back to async (decision 24): with no replica to
    // ack, a commit waits (the shard router answers Unavailable past its
    // commit bound) instead of being acknowledged from the primary alone.
    // MariaDB waits for one ack (it has no wait-for-replica-count setting).
    "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
    `--rpl-semi-sync-master-timeout=${SEMI_SYNC_TIMEOUT_MS}`,
    `--slave-net-timeout=${REPLICA_NET_TIMEOUT_S}`,
    // Durability: real for `npm start`, relaxed for throwaway test clusters.
    `--sync-binlog=${ephemeral ? 0 : 1}`,
    `--innodb-flush-log-at-trx-commit=${ephemeral ? 2 : 1}`,
    `--innodb-doublewrite=${ephemeral ? 0 : 1}`,
    // Small footprint: four of these share a 2-core box during tests.
    ...innodbSizing(),
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-buffer-size=4M",
    "--loose-innodb-adaptive-hash-index=OFF",
    "--performance-schema=OFF",
    "--aria-pagecache-buffer-size=4M",
    "--key-buffer-size=1M",
    "--table-open-cache=400",
    "--max-connections=200",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
    "--default-time-zone=+00:00",
  ];
}

/**
 * A private tmpdir per member: mariadbd deletes every `#sql*` file in its
 * tmpdir at startup, so members sharing /tmp would delete each other's
 * temporary tables.
 */
async function ensureTmpdir(dir: string): Promise<string> {
  const tmp = join(dir, "tmp");
  await mkdir(tmp, { recursive: true });
  return tmp;
}

function innodbSizing(): string[] {
  return ["--innodb-log-file-size=16M"];
}

function runAsRootArgs(): string[] {
  // mariadbd refuses to run as root unless told to.
  return process.getuid?.() === 0 ? ["--user=root"] : [];
}

/** Unix socket paths are limited to ~104 bytes; fall back to a short temp path. */
function socketPath(dir: string): string {
  const inDir = join(dir, "mariadbd.sock");
  if (Buffer.byteLength(inDir) < 100) return inDir;
  return join(tmpdir(), `chirp-${createHash("sha256").update(dir).digest("hex").slice(0, 16)}.sock`);
}

/**
 * Accounts on one member, applied on every start so grants follow the code.
 * Not binlogged: each member gets them directly, which keeps replicas free of
 * local GTIDs (gtid_strict_mode would reject them at failover).
 */
async function ensureUsers(addr: MemberAddress, spec: MemberSpec, secrets: MysqlSecrets): Promise<void> {
  await withMysql(addr, secrets.admin, async (c) => {
    await c.query("SET SESSION sql_log_bin = 0");
    for (const { user, password } of [secrets.repl, secrets.app]) {
      await c.query(`CREATE USER IF NOT EXISTS ?@'127.0.0.1' IDENTIFIED BY ?`, [user, password]);
      await c.query(`ALTER USER ?@'127.0.0.1' IDENTIFIED BY ?`, [user, password]);
    }
    await c.query(`GRANT REPLICATION SLAVE ON *.* TO ?@'127.0.0.1'`, [secrets.repl.user]);
    await grantApp(c, secrets.app, spec.databases);
  });
}

async function grantApp(c: Connection, app: MysqlCredentials, databases: readonly string[]): Promise<void> {
  for (const db of databases) {
    await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${quoteIdent(db)}.* TO ?@'127.0.0.1'`, [app.user]);
  }
}

/**
 * Lets the application account use further shard databases (another
 * keyspace's, e.g. a test file's on a shared cluster) on every member of a
 * local cluster. Not binlogged, like the accounts themselves.
 */
export async function grantAppDatabases(
  members: readonly MemberAddress[],
  admin: MysqlCredentials,
  app: MysqlCredentials,
  databases: readonly string[],
): Promise<void> {
  await Promise.all(
    members.map((m) =>
      withMysql(m, admin, async (c) => {
        await c.query("SET SESSION sql_log_bin = 0");
        await grantApp(c, app, databases);
      }),
    ),
  );
}

/**
 * Points every replica at the primary (ports change each run), then waits
 * until replication runs and the primary reports semi-sync ON with all
 * replicas acknowledging.
 */
export async function setupReplication(
  replicaSet: string,
  primary: RunningMember,
  replicas: readonly RunningMember[],
  secrets: MysqlSecrets,
  log: ClusterLog,
): Promise<void> {
  const admin = secrets.admin;
  await withMysql(primary.address, admin, async (c) => {
    await c.query("STOP SLAVE");
    await c.query("RESET SLAVE ALL");
    await c.query("SET GLOBAL rpl_semi_sync_slave_enabled = OFF");
    // A primary started with no replica (alone in its set, or its members
    // divergent) takes writes asynchronously until the topology manager
    // attaches one and turns semi-sync on (it alerts meanwhile): otherwise the
    // migrations that follow the start would wait for a replica forever.
    await c.query(`SET GLOBAL rpl_semi_sync_master_enabled = ${replicas.length > 0 ? "ON" : "OFF"}`);
    await c.query("SET GLOBAL read_only = OFF");
  });

  await Promise.all(
    replicas.map((r) =>
      withMysql(r.address, admin, async (c) => {
        await c.query("STOP SLAVE");
        await c.query("SET GLOBAL read_only = ON");
        await c.query("SET GLOBAL rpl_semi_sync_master_enabled = OFF");
        // Read by the IO thread when it starts, so set before START SLAVE.
        await c.query("SET GLOBAL rpl_semi_sync_slave_enabled = ON");
        await c.query(CHANGE_MASTER, [primary.address.host, primary.address.port, secrets.repl.user, secrets.repl.password]);
        await c.query("START SLAVE");
        await pollUntil(
          `replication ${primary.spec.name} -> ${r.spec.name}`,
          async () => {
            const s = await slaveStatus(c);
            return s?.["Slave_IO_Running"] === "Yes" && s["Slave_SQL_Running"] === "Yes";
          },
          REPLICATION_TIMEOUT_MS,
          async () => describeSlave(await slaveStatus(c)),
        );
      }),
    ),
  );

  if (replicas.length === 0) {
    log(`replication ${replicaSet}: no replicas, primary ${primary.spec.name} alone`);
    return;
  }
  await withMysql(primary.address, admin, (c) =>
    pollUntil(
      `semi-sync on ${primary.spec.name}`,
      async () => {
        const st = await semiSyncStatus(c);
        return st.status === "ON" && st.clients >= replicas.length;
      },
      REPLICATION_TIMEOUT_MS,
      async () => JSON.stringify(await semiSyncStatus(c)),
    ),
  );
  log(`replication ${replicaSet} ok: ${primary.spec.name} -> ${replicas.map((r) => r.spec.name).join(", ")} (semi-sync)`);
}

export async function semiSyncStatus(c: Connection): Promise<{ status: string; clients: number }> {
  const [rows] = await c.query<RowDataPacket[]>(
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients')",
  );
  const get = (name: string): string =>
    String(rows.find((r) => String(r["Variable_name"]).toLowerCase() === name.toLowerCase())?.["Value"] ?? "");
  return { status: get("Rpl_semi_sync_master_status"), clients: Number(get("Rpl_semi_sync_master_clients") || 0) };
}

async function slaveStatus(c: Connection): Promise<RowDataPacket | undefined> {
  const [rows] = await c.query<RowDataPacket[]>("SHOW SLAVE STATUS");
  return rows[0];
}

function describeSlave(s: RowDataPacket | undefined): string {
  if (!s) return "no replication configured";
  const io = s["Last_IO_Error"] ? `; IO error: ${s["Last_IO_Error"]}` : "";
  const sql = s["Last_SQL_Error"] ? `; SQL error: ${s["Last_SQL_Error"]}` : "";
  return `IO ${s["Slave_IO_Running"]}, SQL ${s["Slave_SQL_Running"]}${io}${sql}`;
}

function sqlString(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}
