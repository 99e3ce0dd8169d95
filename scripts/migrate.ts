// One-shot schema migration against MySQL servers given by URL (the
// docker-compose `migrate` job, or a deployment step): applies every pending
// lib/db/migrations file to every shard database, then exits.
// `npm start` and the tests migrate by themselves; this is for servers they
// do not own. Replication is not touched.
import { migrate } from "../lib/db/migrate.js";
import { InfraEnvError, parseInfraEnv } from "../lib/shard/infra-env.js";
import { loadShardConfig } from "../lib/shard/shard-config.js";

const say = (line: string): void => console.error(`[migrate] ${line}`);

try {
  const config = loadShardConfig(process.env["CHIRP_SHARD_CONFIG"] ?? "local");
  const external = parseInfraEnv(process.env, config);
  if (external.mysql === undefined) {
    say("set MYSQL_URL, or MYSQL_URL_<REPLICA SET> for every replica set (e.g. MYSQL_URL_RS0, MYSQL_URL_RS1)");
    process.exit(2);
  }
  const result = await migrate({
    mysql: {
      keyspace: config.keyspace,
      replicaSets: external.mysql.replicaSets,
      shards: config.shards.map((s) => ({ name: s.name, replicaSet: s.replicaSet, database: s.database })),
      appUser: external.mysql.appUser,
      adminUser: external.mysql.adminUser,
    },
    log: say,
  });
  say(`done: ${JSON.stringify(result)}`);
} catch (err) {
  say(err instanceof InfraEnvError ? err.message : `failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
