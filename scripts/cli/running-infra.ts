// Where the servers of a running Chirp are, for the commands that talk to them
// directly (`chirp topology`, `chirp reshard`): NATS_URL and MYSQL_URL_<RS>
// (the admin account) when set, else the infra.json of a live `npm start`
// under the data dir (its lock names a live process). A string says why
// there is nothing to talk to.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseInfraJson } from "../../devcluster/index.js";
import { LOCK_FILE } from "../../devcluster/lock.js";
import { isAlive } from "../../devcluster/process.js";
import { parseInfraEnv } from "../../lib/shard/infra-env.js";
import type { ShardConfig } from "../../lib/shard/shard-config.js";
import type { MysqlCredentials, ReplicaSetInfo } from "../../lib/shard/types.js";

export interface RunningInfra {
  readonly natsUrl: string;
  readonly adminUser: MysqlCredentials;
  readonly replicaSets: readonly ReplicaSetInfo[];
  /** Where it was found, for the command's output. */
  readonly source: string;
}

export function findRunningInfra(dataDir: string, config: ShardConfig): RunningInfra | string {
  const hasEnv = process.env["NATS_URL"] !== undefined && (process.env["MYSQL_URL"] !== undefined || Object.keys(process.env).some((k) => k.startsWith("MYSQL_URL_")));
  if (hasEnv) {
    const parsed = parseInfraEnv(process.env, config);
    if (parsed.mysql === undefined || parsed.natsUrl === undefined) return "set NATS_URL and MYSQL_URL_<RS> (admin account)";
    return { natsUrl: parsed.natsUrl, adminUser: parsed.mysql.adminUser, replicaSets: parsed.mysql.replicaSets, source: "from NATS_URL and MYSQL_URL_*" };
  }
  const file = join(dataDir, "infra.json");
  const lock = join(dataDir, LOCK_FILE);
  const notRunning = `Chirp is not running with data dir ${dataDir} (start it with \`npm start\`, or set NATS_URL and MYSQL_URL_<RS> with the admin account)`;
  if (!existsSync(file) || !existsSync(lock)) return notRunning;
  try {
    const owner = JSON.parse(readFileSync(lock, "utf8")) as { pid?: unknown };
    if (typeof owner.pid !== "number" || !isAlive(owner.pid)) return notRunning;
  } catch {
    return notRunning;
  }
  const info = parseInfraJson(readFileSync(file, "utf8"));
  return { natsUrl: info.natsUrl, adminUser: info.mysql.adminUser, replicaSets: info.mysql.replicaSets, source: `from ${file}` };
}
