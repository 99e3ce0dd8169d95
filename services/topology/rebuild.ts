// Healing a member refused for errant transactions (issue 22): transactions
// it holds that the primary lacks, typically the write that was in flight
// when it was frozen or cut off and failed over. Such a member can never
// replicate from the primary again as it is. The manager first saves the
// errant transactions for inspection (a file, decoded with mariadb-binlog,
// and a log line naming them), then rebuilds the member from the current
// primary: a consistent snapshot (mariadb-dump --single-transaction, which
// notes the snapshot's GTID position) loaded with binary logging off, its own
// binlog reset to the primary's history at the snapshot, then GTID
// replication with semi-sync from that position. Uses the MariaDB client
// programs (mariadb-dump, mariadb, mariadb-binlog), over the network, so it
// works for members on other hosts too.
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Connection, RowDataPacket } from "mysql2/promise";
import type { Logger } from "../../lib/logger.js";
import { formatGtidList, parseGtidList, type Gtid } from "../../lib/shard/gtid.js";
import { isReplicatingFrom, pointAt } from "../../lib/shard/replication.js";
import type { MemberAddress, MysqlCredentials } from "../../lib/shard/types.js";
import type { MemberProbe } from "./monitor.js";

export interface RebuildContext {
  readonly log: Logger;
  readonly admin: MysqlCredentials;
  readonly repl: MysqlCredentials;
  /** Where errant transactions are saved before a rebuild. */
  readonly errantDir: string;
  /**
   * The replica set's databases (its shards'). A rebuild copies every
   * database the primary holds (a member is rebuilt whole: a split's target
   * and fence databases are on it too, decision 23), these among them.
   */
  readonly databases: readonly string[];
}

/** Events of a binlog file as SHOW BINLOG EVENTS gives them. */
interface BinlogEvent {
  readonly logName: string;
  readonly pos: number;
  readonly endPos: number;
  readonly type: string;
  readonly info: string;
}

/**
 * Writes the errant transactions of `member` to a file under errantDir: the
 * GTIDs, and each transaction's events decoded by mariadb-binlog (rows
 * included) when they can be found in its binlog. Returns the file's path.
 */
export async function saveErrant(ctx: RebuildContext, member: MemberProbe, errant: readonly Gtid[]): Promise<string> {
  const wanted = new Set(errant.map((g) => `${g.domain}-${g.server}-${g.seq}`));
  const ranges = await member.withAdmin(async (c) => findTransactions(c, wanted));
  const parts: string[] = [
    `# Errant transactions of ${member.name} (${member.replicaSet}, ${member.address.host}:${member.address.port}), saved ${new Date().toISOString()}`,
    `# GTIDs the primary lacks: ${formatGtidList(errant)}`,
    "# The member was rebuilt from the primary afterwards; these transactions are not on any member now.",
    "",
  ];
  for (const r of ranges) {
    parts.push(`## ${r.gtid}: ${r.logName} ${r.start}-${r.end}`);
    parts.push(await decodeBinlog(ctx, member.address, r.logName, r.start, r.end).catch((err: unknown) => `(mariadb-binlog failed: ${(err as Error).message})`));
  }
  const missing = [...wanted].filter((g) => !ranges.some((r) => r.gtid === g));
  if (missing.length > 0) parts.push(`## not found in the binlog (purged?): ${missing.join(", ")}`);
  await mkdir(ctx.errantDir, { recursive: true });
  const file = join(ctx.errantDir, `${member.replicaSet}-${member.name}-${new Date().toISOString().replace(/[:.]/g, "-")}.txt`);
  await writeFile(file, `${parts.join("\n")}\n`);
  return file;
}

/** The byte ranges of the wanted transactions, from the newest binlog files back (at most 8 files). */
async function findTransactions(c: Connection, wanted: ReadonlySet<string>): Promise<Array<{ gtid: string; logName: string; start: number; end: number }>> {
  const [logs] = await c.query<RowDataPacket[]>("SHOW BINARY LOGS");
  const found: Array<{ gtid: string; logName: string; start: number; end: number }> = [];
  for (const log of logs.map((l) => String(l["Log_name"])).reverse().slice(0, 8)) {
    const [rows] = await c.query<RowDataPacket[]>(`SHOW BINLOG EVENTS IN ${c.escape(log)}`);
    const events: BinlogEvent[] = rows.map((r) => ({ logName: String(r["Log_name"]), pos: Number(r["Pos"]), endPos: Number(r["End_log_pos"]), type: String(r["Event_type"]), info: String(r["Info"]) }));
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      if (e.type !== "Gtid") continue;
      const gtid = /GTID (\d+-\d+-\d+)/.exec(e.info)?.[1];
      if (gtid === undefined || !wanted.has(gtid)) continue;
      let j = i + 1;
      while (j < events.length && events[j]!.type !== "Gtid") j++;
      found.push({ gtid, logName: e.logName, start: e.pos, end: events[j - 1]!.endPos });
    }
    if (found.length >= wanted.size) break;
  }
  return found;
}

function decodeBinlog(ctx: RebuildContext, at: MemberAddress, logName: string, start: number, end: number): Promise<string> {
  return run(
    "mariadb-binlog",
    ["--read-from-remote-server", `--host=${at.host}`, `--port=${at.port}`, `--user=${ctx.admin.user}`, "--base64-output=decode-rows", "--verbose", `--start-position=${start}`, `--stop-position=${end}`, logName],
    ctx.admin.password,
  );
}

/**
 * Makes `member` a copy of `primary` and a semi-sync replica of it; resolves
 * once it replicates. Destroys what the member holds of the replica set's
 * databases (saveErrant first).
 */
export async function rebuildFrom(ctx: RebuildContext, member: MemberProbe, primary: MemberProbe): Promise<{ snapshot: string; bytes: number }> {
  const log = ctx.log.child({ replica_set: member.replicaSet, member: member.name, primary: primary.name });
  // Out of replication and fenced while its data is replaced.
  await member.withAdmin(async (c) => {
    await c.query("STOP SLAVE");
    await c.query("RESET SLAVE ALL");
    await c.query("SET GLOBAL read_only = ON");
    await c.query("SET GLOBAL rpl_semi_sync_master_enabled = OFF");
  });
  const databases = await databasesToCopy(primary, ctx.databases, log);
  log.warn({ databases }, "rebuilding the member from a snapshot of the primary");
  const { snapshot, bytes } = await copySnapshot({ ...ctx, databases }, primary.address, member.address);
  const history = historyAt(parseGtidList(snapshot), (await primary.refresh()).binlogState);
  await member.withAdmin(async (c) => {
    // Its own binlog starts again from the primary's history at the snapshot: nothing errant is left in it.
    await c.query("RESET MASTER");
    await c.query("SET GLOBAL gtid_binlog_state = ?", [formatGtidList(history)]);
  });
  // pointAt takes the binlog position (now the snapshot's) as where replication starts.
  await member.withAdmin((c) => pointAt(c, primary.address, ctx.repl));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await member.refresh();
    if (isReplicatingFrom(s, primary.address)) break;
    if (Date.now() > deadline) throw new Error(`${member.name} did not start replicating after its rebuild: ${s.slave?.lastIoError ?? ""} ${s.slave?.lastSqlError ?? ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  log.warn({ snapshot, bytes }, "rebuilt: replicating from the primary");
  return { snapshot, bytes };
}

/** The server's own schemas, which every member has of its own and a rebuild never copies. */
const SYSTEM_DATABASES = new Set(["mysql", "information_schema", "performance_schema", "sys"]);

/**
 * Every database the primary holds but the server's own. Copying only the
 * replica set's shard databases (the start's shard-config) would leave out
 * what a split in progress has made on the set (its target databases and the
 * source's fence), and the member's replication would then break on their
 * changes; and a source database a completed split dropped is not there to
 * copy. The shards are logged when one is missing.
 */
async function databasesToCopy(primary: MemberProbe, shards: readonly string[], log: Logger): Promise<string[]> {
  const rows = await primary.withAdmin(async (c) => (await c.query<RowDataPacket[]>("SHOW DATABASES"))[0]);
  const held = rows.map((r) => String(Object.values(r)[0])).filter((name) => !SYSTEM_DATABASES.has(name)).sort();
  const missing = shards.filter((d) => !held.includes(d));
  if (missing.length > 0) log.warn({ missing }, "the primary lacks some of the replica set's shard databases; copying what it holds");
  return held;
}

/**
 * The primary's binlog state as of a snapshot at `pos`: the snapshot's GTIDs,
 * and the last GTID of every other server the primary's history holds from
 * before them. A state of the position alone would lack the other servers'
 * entries (former primaries), and every comparison of states (a rejoin's
 * errant check, the start's choice of primary) would then count the members
 * that have them as diverged from this one.
 */
export function historyAt(pos: readonly Gtid[], primaryState: readonly Gtid[]): Gtid[] {
  const before = primaryState.filter((g) => {
    const at = pos.find((p) => p.domain === g.domain);
    return at !== undefined && g.server !== at.server && g.seq < at.seq;
  });
  // The position last: the server takes each domain's last-loaded GTID as its binlog position.
  return [...before, ...pos];
}

/** Streams a consistent dump of the databases from `from` into `to` with binary logging off; the snapshot's GTID position. */
async function copySnapshot(ctx: RebuildContext, from: MemberAddress, to: MemberAddress): Promise<{ snapshot: string; bytes: number }> {
  const dump = spawn(
    "mariadb-dump",
    [
      `--host=${from.host}`,
      `--port=${from.port}`,
      `--user=${ctx.admin.user}`,
      "--single-transaction",
      "--gtid",
      "--master-data=2",
      "--add-drop-database",
      "--skip-lock-tables",
      "--databases",
      ...ctx.databases,
    ],
    { env: { ...process.env, MYSQL_PWD: ctx.admin.password }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const load = spawn("mariadb", [`--host=${to.host}`, `--port=${to.port}`, `--user=${ctx.admin.user}`, "--init-command=SET SESSION sql_log_bin = 0", "--binary-mode"], {
    env: { ...process.env, MYSQL_PWD: ctx.admin.password },
    stdio: ["pipe", "ignore", "pipe"],
  });
  // The snapshot's position is printed at the end of the dump (a comment: "-- SET GLOBAL gtid_slave_pos='...'").
  let tail = "";
  let bytes = 0;
  dump.stdout.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    tail = (tail + chunk.toString("latin1")).slice(-16 * 1024);
  });
  dump.stdout.pipe(load.stdin);
  const [dumped, loaded] = await Promise.all([exited(dump, "mariadb-dump"), exited(load, "mariadb")]);
  if (dumped !== "" || loaded !== "") throw new Error(`snapshot copy failed: ${dumped} ${loaded}`.trim());
  const snapshot = [...tail.matchAll(/gtid_slave_pos\s*=\s*'([^']*)'/g)].at(-1)?.[1];
  if (snapshot === undefined) throw new Error("mariadb-dump gave no GTID position (--gtid --master-data)");
  return { snapshot, bytes };
}

/** Resolves "" when the process exits 0, else its stderr (or the spawn error). */
function exited(p: ReturnType<typeof spawn>, name: string): Promise<string> {
  let stderr = "";
  p.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => {
    p.on("error", (err) => resolve(`${name}: ${err.message}`));
    p.on("close", (code) => resolve(code === 0 ? "" : `${name} exited ${code}: ${stderr.trim().slice(0, 500)}`));
  });
}

/** Runs a client program with the password in MYSQL_PWD; its stdout. */
function run(cmd: string, args: readonly string[], password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, MYSQL_PWD: password }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (c: Buffer) => (out += c.toString()));
    p.stderr.on("data", (c: Buffer) => (err += c.toString()));
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${err.trim().slice(0, 500)}`))));
  });
}
