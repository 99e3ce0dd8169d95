// All replica sets of the shard config as private mariadbd processes.
import { join } from "node:path";
import type { RowDataPacket } from "mysql2/promise";
import type { ShardConfig } from "../lib/shard/shard-config.js";
import { chooseStartupPrimary, formatGtidList, parseGtidList, type StartupMemberView } from "../lib/shard/gtid.js";
import {
  loadOrCreateSecrets,
  setupReplication,
  startMember,
  type MariadbBinaries,
  type MemberContext,
  type MemberSpec,
  type MysqlSecrets,
  type RunningMember,
} from "./mariadb.js";
import { withMysql } from "../lib/db/mysql-client.js";
import type { ClusterLog } from "./process.js";
import type { Reaper } from "./reaper.js";
import type { MysqlCredentials, ReplicaSetInfo } from "../lib/shard/types.js";

export interface LocalMysql {
  replicaSets: ReplicaSetInfo[];
  adminUser: MysqlCredentials;
  appUser: MysqlCredentials;
  /** The running members (a restarted member replaces its old entry). */
  members: RunningMember[];
  /**
   * Starts a member again on its old port, after it died or was killed (stops
   * it first if it still runs). Only the process: it comes back read_only and
   * not replicating, and the topology manager decides its role.
   */
  restartMember(name: string): Promise<RunningMember>;
  /** Replicas first, then primaries. */
  stop(): Promise<void>;
}

export interface StartLocalMysqlOptions {
  config: ShardConfig;
  /** Holds secrets.json and one folder per member. */
  dir: string;
  bins: MariadbBinaries;
  log: ClusterLog;
  reaper?: Reaper | undefined;
  ephemeral: boolean;
}

export async function startLocalMysql(opts: StartLocalMysqlOptions): Promise<LocalMysql> {
  const { config } = opts;
  const specs: { spec: MemberSpec; primary: boolean }[] = config.replicaSets.flatMap((rs, i) => {
    const databases = config.shards.filter((s) => s.replicaSet === rs.name).map((s) => s.database);
    return rs.members.map((m, j) => ({
      primary: m.role === "primary",
      spec: {
        name: m.name,
        replicaSet: rs.name,
        serverId: (i + 1) * 100 + j + 1,
        dir: join(opts.dir, m.name),
        databases,
      },
    }));
  });
  const secrets = await loadOrCreateSecrets(
    opts.dir,
    specs.map((s) => s.spec.dir),
  );

  const ctx: MemberContext = { bins: opts.bins, secrets, log: opts.log, reaper: opts.reaper, ephemeral: opts.ephemeral };
  // Every member at once: initialisation and InnoDB startup overlap nicely.
  const settled = await Promise.allSettled(specs.map((s) => startMember(s.spec, ctx)));
  const members = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  // Roles come from the servers' own state (see decideRoles), not the config.
  const primaries = new Set<string>();
  const isPrimary = (m: RunningMember): boolean => primaries.has(m.spec.name);
  const stop = async (): Promise<void> => {
    await Promise.all(members.filter((m) => !isPrimary(m)).map((m) => m.proc.stop()));
    await Promise.all(members.filter(isPrimary).map((m) => m.proc.stop()));
  };
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await stop();
    throw failed.reason;
  }

  try {
    const replicaSets = await Promise.all(
      config.replicaSets.map(async (rs): Promise<ReplicaSetInfo> => {
        const ours = members.filter((m) => m.spec.replicaSet === rs.name);
        const configPrimary = new Set(rs.members.filter((m) => m.role === "primary").map((m) => m.name));
        const { primary, replicas } = await decideRoles(rs.name, ours, configPrimary, secrets, opts.log);
        primaries.add(primary.spec.name);
        await setupReplication(rs.name, primary, replicas, secrets, opts.log);
        return { name: rs.name, primary: primary.address, replicas: replicas.map((r) => r.address) };
      }),
    );
    const restartMember = async (name: string): Promise<RunningMember> => {
      const i = members.findIndex((m) => m.spec.name === name);
      const old = members[i];
      if (!old) throw new Error(`no member ${name}`);
      await old.proc.stop();
      const fresh = await startMember(old.spec, ctx, old.address.port);
      members[i] = fresh;
      return fresh;
    };
    return { replicaSets, adminUser: secrets.admin, appUser: secrets.app, members, restartMember, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Which member of a replica set is its primary on this start. The member that
 * was primary last time is not necessarily the config's: the topology manager
 * may have failed over. The servers' binlogs say it robustly (unlike a roles
 * file, which a crash between promotion and writing it leaves stale): the
 * primary is the member whose binlog state contains every other member's, so a
 * member is never re-pointed at one that is behind it; among equals, the one
 * that was not replicating when it stopped. A member whose history the primary
 * lacks (errant transactions, e.g. written while semi-sync had fallen back to
 * async) is started but kept out of replication, loudly: rejoining it would
 * silently fork the data.
 */
async function decideRoles(
  replicaSet: string,
  ours: readonly RunningMember[],
  configPrimary: ReadonlySet<string>,
  secrets: MysqlSecrets,
  log: ClusterLog,
): Promise<{ primary: RunningMember; replicas: RunningMember[] }> {
  const views = await Promise.all(
    ours.map((m) =>
      withMysql(m.address, secrets.admin, async (c): Promise<StartupMemberView> => {
        const [[vars]] = await c.query<RowDataPacket[]>(
          "SELECT @@global.gtid_binlog_state AS state, @@global.gtid_binlog_pos AS pos",
        );
        const [slave] = await c.query<RowDataPacket[]>("SHOW SLAVE STATUS");
        return {
          name: m.spec.name,
          state: parseGtidList(String(vars?.["state"] ?? "")),
          pos: parseGtidList(String(vars?.["pos"] ?? "")),
          configuredReplica: String(slave[0]?.["Master_Host"] ?? "") !== "",
          configRole: configPrimary.has(m.spec.name) ? "primary" : "replica",
        };
      }),
    ),
  );
  const roles = chooseStartupPrimary(views);
  const primary = ours.find((m) => m.spec.name === roles.primary)!;
  log(`replication ${replicaSet}: primary ${roles.primary} (${roles.reason})`);
  for (const d of roles.divergent) {
    log(
      `replication ${replicaSet}: WARNING ${d.name} has transactions ${roles.primary} lacks (${formatGtidList(d.errant)}); ` +
        `it stays read-only and out of replication: inspect it, then rebuild it from ${roles.primary}`,
    );
  }
  const replicas = ours.filter((m) => roles.replicas.includes(m.spec.name));
  // A member that was primary has a stale replication position; its binlog,
  // contained in the primary's (checked above), is where it really is.
  await Promise.all(
    replicas.map((r) =>
      withMysql(r.address, secrets.admin, async (c) => {
        await c.query("STOP SLAVE");
        await c.query("SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos");
      }),
    ),
  );
  return { primary, replicas };
}
