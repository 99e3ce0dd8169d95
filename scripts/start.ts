// `npm start`: the whole system on one machine. Infra from MYSQL_URL*/REDIS_URL/
// NATS_URL when given, otherwise private mariadbd replica sets, redis-server and
// nats-server under .data/local; then the topology manager, and every service
// and the gateway in one process (`--target all`), or with `--mesh` each
// service in its own process and the gateway in another.
import { parseArgs } from "node:util";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MESH_SECRET_FILE, TOKEN_KEY_FILE, resolveMeshSecret, resolveTokenKeys } from "../lib/auth/keys.js";
import { VAPID_KEY_FILE, resolveVapidKey } from "../lib/push/vapid.js";
import { DEFAULT_DATA_DIR, DataDirLockedError, MissingBinaryError, resolveInfra, type RunningInfra } from "../devcluster/index.js";
import { ConfigError } from "../lib/config.js";
import { launchSystem, serviceInfraEnv, topologyInfraEnv, type Mesh } from "../devcluster/launch.js";
import { isAlive } from "../devcluster/process.js";
import { SERVICE_NAMES } from "../lib/mesh.js";
import { loadShardConfig } from "../lib/shard/shard-config.js";

const say = (line: string): void => console.error(`[chirp] ${line}`);

const { values: args } = parseArgs({
  options: { mesh: { type: "boolean", default: false }, processes: { type: "string", default: "1" } },
  strict: true,
});
const mode = args.mesh ? "mesh" : "single";
// Several single processes behind the same ports (lib/workers.ts).
const processes = Number(args.processes);
if (!Number.isInteger(processes) || processes < 1 || processes > 64) {
  say(`--processes: a whole number from 1 to 64, got ${JSON.stringify(args.processes)}`);
  process.exit(1);
}

let infra: RunningInfra | undefined;
let mesh: Mesh | undefined;
let stoppingSince = 0;

/**
 * Where `chirp topology` (and other tools) find the running system: the infra
 * description, admin account included, so 0600 and removed on stop.
 */
const INFRA_FILE = "infra.json";
function writeInfraFile(running: RunningInfra): void {
  if (running.dataDir === null) return;
  writeFileSync(join(running.dataDir, INFRA_FILE), `${JSON.stringify(running, null, 2)}\n`, { mode: 0o600 });
}
function removeInfraFile(): void {
  if (infra?.dataDir) rmSync(join(infra.dataDir, INFRA_FILE), { force: true });
}
process.on("exit", removeInfraFile);

async function shutdown(signal: string): Promise<void> {
  if (stoppingSince > 0) {
    // One Ctrl-C can arrive twice (the terminal signals the whole group and npm
    // relays it too); only a deliberate second press, later, means "now".
    if (Date.now() - stoppingSince < 1000) return;
    say(`${signal} again: exiting now (servers are stopped by their watchdogs)`);
    process.exit(1);
  }
  stoppingSince = Date.now();
  say(`${signal}: stopping the gateway, the services, then the cluster...`);
  await mesh?.stop();
  removeInfraFile();
  await infra?.stop();
  say("stopped");
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

try {
  infra = await resolveInfra({ log: (line) => say(line) });
  writeInfraFile(infra);
  // Session token signing key: kept with the data, so tokens outlive a
  // restart and die with a wiped data dir. With every server given by URL
  // there is no data dir in use, and it sits beside where one would be.
  const keyFile = infra.dataDir === null ? join(DEFAULT_DATA_DIR, "..", TOKEN_KEY_FILE) : join(infra.dataDir, TOKEN_KEY_FILE);
  const tokenKeys = (() => {
    try {
      return resolveTokenKeys(process.env, keyFile);
    } catch (err) {
      throw new ConfigError([`session token keys: ${(err as Error).message}`]);
    }
  })();
  say(`session tokens signed with the key from ${tokenKeys.source}`);
  // The Web Push (VAPID) key, kept the same way: browsers' subscriptions are
  // bound to it, so a new key would orphan every one of them.
  const vapidFile = join(keyFile, "..", VAPID_KEY_FILE);
  const vapid = (() => {
    try {
      return resolveVapidKey(process.env, vapidFile);
    } catch (err) {
      throw new ConfigError([`web push (VAPID) key: ${(err as Error).message}`]);
    }
  })();
  say(`web push signed with the VAPID key from ${vapid.source}`);
  // The mesh secret the gateway vouches for callers with (decision 22), kept
  // the same way, so the seed CLI's backdated import can vouch too.
  const meshSecret = (() => {
    try {
      return resolveMeshSecret(process.env, join(keyFile, "..", MESH_SECRET_FILE));
    } catch (err) {
      throw new ConfigError([`CHIRP_MESH_SECRET: ${(err as Error).message}`]);
    }
  })();
  say(`the gateway vouches for callers with the mesh secret from ${meshSecret.source}`);
  say(mode === "mesh" ? "starting two topology managers (one leads, one stands by), then the mesh: a process per service and the gateway..." : "starting two topology managers (one leads, one stands by), then every service and the gateway in one process...");
  mesh = await launchSystem({
    mode,
    processes,
    env: { ...process.env, ...serviceInfraEnv(infra) },
    topologyEnv: topologyInfraEnv(infra, loadShardConfig("local")),
    topologyStandby: true,
    ports: "default",
    tokenKeys,
    vapidKey: vapid.pem,
    meshSecret: meshSecret.secret,
  });
} catch (err) {
  if (err instanceof DataDirLockedError || err instanceof MissingBinaryError || err instanceof ConfigError) {
    say(err.message);
  } else {
    say(`failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  }
  await mesh?.stop();
  await infra?.stop();
  process.exit(1);
}

const lines = [
  "",
  "Chirp is running.",
  "",
  `  web app     ${mesh.gatewayUrl}/   (open it in a browser)`,
  `  gateway     ${mesh.gatewayUrl}   (Connect JSON over HTTP/1.1, gRPC-Web, gRPC)`,
  `  metrics     ${mesh.gatewayMetricsUrl}   (the gateway${mesh.mode === "single" ? " and every service" : ""}; not on the public port)`,
  ...(mesh.mode === "single"
    ? [
        `  services    grpc://127.0.0.1:${mesh.services.user.grpcPort}   metrics http://127.0.0.1:${mesh.services.user.metricsPort}/metrics   (one process, pid ${mesh.gatewayPid}: ${SERVICE_NAMES.join(", ")} and the gateway)`,
      ]
    : SERVICE_NAMES.map(
        (name) =>
          `  ${name.padEnd(10)}  grpc://127.0.0.1:${mesh!.services[name].grpcPort}   metrics http://127.0.0.1:${mesh!.services[name].metricsPort}/metrics`,
      )),
  ...(mesh.topology
    ? [
        `  topology    epoch ${mesh.topology.epoch}   metrics http://127.0.0.1:${mesh.topology.metricsPort}/metrics   (npx chirp topology)`,
        ...(mesh.topology.standby === undefined ? [] : [`  standby     a second topology manager, pid ${mesh.topology.standby.pid}   metrics http://127.0.0.1:${mesh.topology.standby.metricsPort}/metrics   (takes over if the first stops)`]),
      ]
    : []),
  `  redis       ${infra.redisUrl}`,
  `  nats        ${infra.natsUrl}`,
  ...infra.mysql.replicaSets.map(
    (rs) =>
      `  mysql ${rs.name.padEnd(5)} primary ${rs.primary.host}:${rs.primary.port}` +
      rs.replicas.map((r) => `, replica ${r.host}:${r.port}`).join(""),
  ),
  "",
  "Try:",
  `  curl -s ${mesh.gatewayUrl}/chirp.user.v1.UserService/GetUser -H 'content-type: application/json' -d '{"handle":"alice"}'`,
  `  npx buf curl --protocol grpc --http2-prior-knowledge --list-methods http://127.0.0.1:${mesh.services.user.grpcPort}`,
  "",
  "Ctrl-C stops everything.",
  "",
];
console.log(lines.join("\n"));
superviseMysql(infra);

/**
 * A MariaDB member of ours that died is started again on its old address
 * (read-only and not replicating; the topology manager gives it its role and
 * rebuilds it if it holds transactions the primary lacks), as a service
 * manager would restart a crashed server. Checked every 2 s; not while
 * stopping.
 */
function superviseMysql(running: RunningInfra): void {
  const members = new Set(running.mysql.replicaSets.flatMap((rs) => [rs.primary.name, ...rs.replicas.map((r) => r.name)]));
  const restarting = new Set<string>();
  const timer = setInterval(() => {
    if (stoppingSince > 0) return clearInterval(timer);
    for (const p of running.processes) {
      if (!members.has(p.name) || restarting.has(p.name) || isAlive(p.pid)) continue;
      restarting.add(p.name);
      say(`MariaDB member ${p.name} (pid ${p.pid}) is gone: starting it again`);
      running.restartMysqlMember(p.name).then(
        (m) => say(`${p.name} is running again (pid ${m.pid}); the topology manager takes it back`),
        (err: unknown) => say(`could not start ${p.name} again: ${(err as Error).message}; retrying`),
      ).finally(() => restarting.delete(p.name));
    }
  }, 2000);
  timer.unref();
}
