// chirp topology: the live topology as the topology manager published it
// (NATS KV), checked against the servers: each shard's replica set, which
// member is primary, and each replica's lag (0 when it has applied the
// primary's last GTID, else the heartbeat's age, and what SHOW SLAVE STATUS
// says) and replication state.
//
// Finds the running system through NATS_URL and MYSQL_URL_<RS> (admin
// account) when set, otherwise through the infra description `npm start`
// writes into its data dir (.data/local/infra.json, 0600, removed on stop).
import { resolve } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { DEFAULT_DATA_DIR } from "../../devcluster/index.js";
import type { MemberAddress, MysqlCredentials } from "../../lib/shard/types.js";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { withMysql } from "../../lib/db/mysql-client.js";
import { loadShardConfig } from "../../lib/shard/shard-config.js";
import { formatGtidList, gtidPosCurrent, parseGtidList } from "../../lib/shard/gtid.js";
import { readHeartbeatLagMs, readMemberState, type MemberState } from "../../lib/shard/replication.js";
import { LEADER_BUCKET, currentLeader } from "../../services/topology/leadership.js";
import { TOPOLOGY_BUCKET, readMemberStatus, readTopology, type LiveTopology, type MemberStatusReport } from "../../lib/shard/topology.js";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, rejectUnknownFlags, takeOption } from "./args.js";
import { findRunningInfra } from "./running-infra.js";

export const usage = "chirp topology [show] [--json] [--data-dir <dir>] [--env <shard config>]";

export const help = [
  `usage: ${usage}`,
  "",
  "Shows the live topology as the topology manager published it (NATS KV), checked against",
  "the servers: each shard's replica set, which member is primary, each replica's lag",
  "(0 when it has applied the primary's last GTID, else the heartbeat's age; and",
  "Seconds_Behind_Master), replication and semi-sync state.",
  "",
  "Finds the running system through NATS_URL and MYSQL_URL_<RS> (admin account) when set,",
  "otherwise through the description `npm start` writes into its data dir.",
  "",
  "options:",
  "  --json              machine-readable output",
  "  --data-dir <dir>    the `npm start` data dir [.data/local]",
  "  --env <name>        shard topology shard-config/<name>.json [local]",
  "",
  "exits 1 when Chirp is not running or no topology is published yet.",
].join("\n");

const TIMEOUT_MS = 2_000;

interface Target {
  natsUrl: string;
  admin: MysqlCredentials;
  /** Every member we know of, by replica set (the topology may list fewer). */
  members: Map<string, MemberAddress[]>;
  source: string;
}

export interface MemberReport {
  name: string;
  address: string;
  role: "primary" | "replica" | "not in topology";
  reachable: boolean;
  problem?: string;
  readOnly?: boolean;
  gtid?: string;
  /** Replicas: what the SQL thread has applied (@@gtid_slave_pos). */
  appliedGtid?: string;
  /**
   * Replicas: seconds behind the primary: 0 when it has applied the primary's
   * last GTID, else the heartbeat row's age (heartbeats are written only while
   * routers ask for them, so an old one alone does not mean a lagging replica).
   */
  lagSeconds?: number | null;
  /** Replicas: what lagSeconds comes from. */
  lagFrom?: "gtid" | "heartbeat";
  secondsBehindMaster?: number | null;
  replication?: string;
  semiSync?: string;
  /** What the topology manager says of the member when it differs from its role: refused, rebuilding, down, not replicating. */
  managerStatus?: string;
}

export async function run(argv: string[]): Promise<number> {
  const args = [...argv];
  let json: boolean;
  let dataDir: string;
  let env: string;
  try {
    json = args.includes("--json");
    if (json) args.splice(args.indexOf("--json"), 1);
    dataDir = resolve(takeOption(args, "data-dir", DEFAULT_DATA_DIR));
    env = takeOption(args, "env", "local");
    rejectUnknownFlags(args);
    if (args[0] === "show") args.shift();
    if (args.length > 0) throw new UsageError(`unknown subcommand ${JSON.stringify(args[0])}`);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`chirp topology: ${err.message} (usage: ${usage})\n`);
    return EXIT_USAGE;
  }

  const target = findTarget(dataDir, env);
  if (typeof target === "string") {
    process.stderr.write(`chirp topology: ${target}\n`);
    return EXIT_FAILURE;
  }
  const live = await readLive(target.natsUrl, loadShardConfig(env).keyspace).catch((err: unknown) => {
    throw new Error(`cannot read the topology from NATS at ${target.natsUrl}: ${(err as Error).message}`);
  });
  const topology = live?.topology;
  if (topology === undefined) {
    process.stderr.write("chirp topology: no topology published yet (is the topology manager running?)\n");
    return EXIT_FAILURE;
  }
  const sets = await Promise.all(
    topology.replicaSets.map(async (rs) => {
      const databases = topology.shards.filter((s) => s.replicaSet === rs.name).map((s) => s.database);
      const listed = [rs.primary, ...rs.replicas];
      const extra = (target.members.get(rs.name) ?? []).filter((m) => !listed.some((l) => l.host === m.host && l.port === m.port));
      const members = await Promise.all([
        inspect(rs.primary, "primary", target.admin, databases[0]),
        ...rs.replicas.map((m) => inspect(m, "replica", target.admin, databases[0])),
        ...extra.map((m) => inspect(m, "not in topology", target.admin, databases[0])),
      ]);
      markCurrent(members[0]!, members.slice(1, 1 + rs.replicas.length));
      // What the manager says of each member (refused, rebuilding, down), when it is more than the topology's role.
      for (const m of members) {
        const said = live?.members?.replicaSets[rs.name]?.[m.name];
        if (said !== undefined && said.status !== m.role) m.managerStatus = `${said.status}${said.detail ? `: ${said.detail}` : ""} (since ${said.since})`;
      }
      return { name: rs.name, shards: topology.shards.filter((s) => s.replicaSet === rs.name).map((s) => s.name), members };
    }),
  );

  if (json) {
    process.stdout.write(
      `${JSON.stringify({ keyspace: topology.keyspace, epoch: topology.epoch, updateTime: topology.updateTime, source: target.source, leader: live?.leader ?? null, replicaSets: sets }, null, 2)}\n`,
    );
    return EXIT_OK;
  }
  const out: string[] = [
    `keyspace ${topology.keyspace}   epoch ${topology.epoch}   published ${topology.updateTime}   (${target.source})`,
    `topology manager leading: ${live?.leader ?? "none holds the lease now"}`,
    "",
  ];
  out.push(table(["shard", "replica set", "database", "primary"], topology.shards.map((s) => {
    const rs = topology.replicaSets.find((r) => r.name === s.replicaSet);
    return [s.serving === false ? `${s.name} (reshard target, not serving)` : s.name, s.replicaSet, s.database, rs ? `${rs.primary.name} ${rs.primary.host}:${rs.primary.port}` : "?"];
  })));
  for (const r of topology.resharding ?? []) {
    out.push(`resharding ${r.source} -> ${r.targets.join(", ")}: reads on the ${r.reads}, writes ${r.writes === "held" ? "held" : `on the ${r.writes}`} (chirp reshard status)`);
  }
  for (const rs of sets) {
    out.push("", `${rs.name} (shards ${rs.shards.join(", ")})`);
    out.push(
      table(
        ["member", "address", "role", "state", "lag", "gtid"],
        rs.members.map((m) => [m.name, m.address, m.managerStatus === undefined ? m.role : `${m.role}; manager: ${m.managerStatus}`, describeState(m), describeLag(m), m.gtid ?? ""]),
      ),
    );
  }
  process.stdout.write(`${out.join("\n")}\n`);
  return EXIT_OK;
}

function findTarget(dataDir: string, env: string): Target | string {
  const found = findRunningInfra(dataDir, loadShardConfig(env));
  if (typeof found === "string") return found;
  return {
    natsUrl: found.natsUrl,
    admin: found.adminUser,
    members: new Map(found.replicaSets.map((r) => [r.name, [r.primary, ...r.replicas]])),
    source: found.source,
  };
}

async function readLive(
  natsUrl: string,
  keyspace: string,
): Promise<{ topology: LiveTopology; members: MemberStatusReport | undefined; leader: string | undefined } | undefined> {
  const nc = await connect({ ...parseNatsUrl(natsUrl), timeout: TIMEOUT_MS, maxReconnectAttempts: 0, name: "chirp-cli" });
  try {
    let kv;
    try {
      kv = await new Kvm(nc).open(TOPOLOGY_BUCKET);
      await kv.status();
    } catch {
      return undefined; // no bucket: nothing published
    }
    const topology = (await readTopology(kv, keyspace))?.topology;
    if (topology === undefined) return undefined;
    // Which topology manager holds the lease (services/topology/leadership.ts), if the bucket exists.
    const leader = await new Kvm(nc)
      .open(LEADER_BUCKET)
      .then((b) => currentLeader(b, keyspace))
      .catch(() => undefined);
    return { topology, members: await readMemberStatus(kv, keyspace), leader };
  } finally {
    await nc.close();
  }
}

async function inspect(m: MemberAddress, role: MemberReport["role"], admin: MysqlCredentials, database: string | undefined): Promise<MemberReport> {
  const base = { name: m.name, address: `${m.host}:${m.port}`, role };
  try {
    return await withMysql(
      m,
      admin,
      async (c) => {
        const state: MemberState = await readMemberState(c, TIMEOUT_MS);
        const report: MemberReport = {
          ...base,
          reachable: true,
          readOnly: state.readOnly,
          gtid: formatGtidList(state.binlogPos),
        };
        if (state.slave) {
          report.replication = `${state.slave.masterHost}:${state.slave.masterPort} IO ${state.slave.ioRunning}, SQL ${state.slave.sqlRunning}` +
            (state.slave.lastIoError ? `; IO error: ${state.slave.lastIoError}` : "") +
            (state.slave.lastSqlError ? `; SQL error: ${state.slave.lastSqlError}` : "");
          report.secondsBehindMaster = state.slave.secondsBehindMaster;
          report.appliedGtid = formatGtidList(state.slavePos);
          const lagMs = database === undefined ? undefined : await readHeartbeatLagMs(c, database, TIMEOUT_MS).catch(() => undefined);
          report.lagSeconds = lagMs === undefined ? null : lagMs / 1000;
          report.lagFrom = "heartbeat";
        }
        if (!state.slave || state.semiSync.masterEnabled) {
          report.semiSync = state.semiSync.masterEnabled
            ? `semi-sync ${state.semiSync.masterActive ? "ON" : "OFF (async)"}, ${state.semiSync.masterClients} replica(s)`
            : "semi-sync disabled";
        }
        return report;
      },
      { connectTimeoutMs: TIMEOUT_MS },
    );
  } catch (err) {
    return { ...base, reachable: false, problem: (err as { code?: string }).code ?? (err as Error).message };
  }
}

/**
 * A replica that had applied the primary's last GTID is 0 s behind, however old
 * the heartbeat (the members were read at about the same time; a position
 * only grows, so whichever was read first, the replica held what the primary did then).
 */
function markCurrent(primary: MemberReport, replicas: MemberReport[]): void {
  if (!primary.reachable || primary.gtid === undefined) return;
  const pos = parseGtidList(primary.gtid);
  for (const r of replicas) {
    if (r.appliedGtid !== undefined && gtidPosCurrent(parseGtidList(r.appliedGtid), pos)) {
      r.lagSeconds = 0;
      r.lagFrom = "gtid";
    }
  }
}

function describeState(m: MemberReport): string {
  if (!m.reachable) return `UNREACHABLE (${m.problem})`;
  const rw = m.readOnly ? "read-only" : "read-write";
  if (m.replication) return `${rw}, replicating from ${m.replication}`;
  return `${rw}${m.semiSync ? `, ${m.semiSync}` : ""}`;
}

function describeLag(m: MemberReport): string {
  if (!m.reachable || m.replication === undefined) return "";
  const lag = m.lagSeconds === null || m.lagSeconds === undefined ? "?" : `${m.lagSeconds.toFixed(3)} s`;
  const sbm = m.secondsBehindMaster === null || m.secondsBehindMaster === undefined ? "null" : `${m.secondsBehindMaster} s`;
  return `${m.lagFrom === "gtid" ? "0 s (current by GTID)" : `${lag} (heartbeat)`}; behind master ${sbm}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
