// All replica sets of the shard config as private mariadbd processes.
import { join } from "node:path";
import type { ShardConfig } from "../shard-config.js";
import {
  loadOrCreateSecrets,
  setupReplication,
  startMember,
  type MariadbBinaries,
  type MemberSpec,
  type RunningMember,
} from "./mariadb.js";
import type { ClusterLog } from "./process.js";
import type { Reaper } from "./reaper.js";
import type { MysqlCredentials, ReplicaSetInfo } from "./types.js";

export interface LocalMysql {
  replicaSets: ReplicaSetInfo[];
  adminUser: MysqlCredentials;
  appUser: MysqlCredentials;
  members: RunningMember[];
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

  // Every member at once: initialisation and InnoDB startup overlap nicely.
  const settled = await Promise.allSettled(
    specs.map((s) =>
      startMember(s.spec, { bins: opts.bins, secrets, log: opts.log, reaper: opts.reaper, ephemeral: opts.ephemeral }),
    ),
  );
  const members = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const isPrimary = (m: RunningMember): boolean => specs.find((s) => s.spec.name === m.spec.name)?.primary ?? false;
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
        const primary = ours.find(isPrimary);
        if (!primary) throw new Error(`replica set ${rs.name} has no primary`);
        const replicas = ours.filter((m) => m !== primary);
        await setupReplication(rs.name, primary, replicas, secrets, opts.log);
        return { name: rs.name, primary: primary.address, replicas: replicas.map((r) => r.address) };
      }),
    );
    return { replicaSets, adminUser: secrets.admin, appUser: secrets.app, members, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
