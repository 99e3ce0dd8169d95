// chirp reshard: split a shard's keyrange while Chirp serves (issue 23,
// decision 23). The workflow lives in lib/reshard; this file reads the
// options, finds the servers, and prints progress.
//
//   chirp reshard --from -40 --to -20,20-40 [--replica-set rs1]   run (or resume) the workflow
//   chirp reshard status [--from -40] [--json]                    what the state says
//   chirp reshard complete --from -40                             drop the source's rows, rewrite shard-config
//   chirp reshard abort --from -40                                writes and reads back to the source, drop the targets, forget the workflow
//
// Finds the running system through NATS_URL and MYSQL_URL_<RS> (admin
// account) when set, otherwise through the infra description `npm start`
// writes into its data dir, as `chirp topology` does. Each replica set's
// primary is taken from the live topology when one is published.
import { resolve } from "node:path";
import type { KV } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { DEFAULT_DATA_DIR } from "../../devcluster/index.js";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { planReshard, ReshardPlanError, type ReshardPlan } from "../../lib/reshard/plan.js";
import { loadState, openReshardKv, RESHARD_BUCKET, reshardKey, type ReshardState } from "../../lib/reshard/state.js";
import { formatBinlogReport, inspectBinlog } from "../../lib/reshard/binlog.js";
import { DEFAULT_HOLD_ATTEMPTS, DEFAULT_HOLD_MS, DEFAULT_MAX_LAG_MS } from "../../lib/reshard/hold.js";
import { formatStatus } from "../../lib/reshard/status.js";
import { abortReshard, runReshard, type ReshardServers, type ReshardStep } from "../../lib/reshard/workflow.js";
import { loadShardConfig, shardConfigPath, type ShardConfig } from "../../lib/shard/shard-config.js";
import { TOPOLOGY_BUCKET, readTopology } from "../../lib/shard/topology.js";
import { EXIT_FAILURE, EXIT_OK, UsageError, rejectUnknownFlags, takeOption } from "./args.js";
import { findRunningInfra } from "./running-infra.js";

export const usage = "chirp reshard [status | complete | abort] --from <shard> [--to <shard>,<shard>...] [--replica-set <rs>] [options]";

export const help = [
  `usage: ${usage}`,
  "",
  "Splits a shard's keyrange into smaller ones while Chirp serves (issue 23, docs/decisions/0023):",
  "creates the target databases (schema from the migrations) on the replica set, copies a",
  "consistent snapshot of every table's rows of the range (each row to the target its vindex",
  "places it on), catches up from the source's binlog, and verifies row counts and checksums",
  "per table and target, switches reads to the targets, then writes (held by every router",
  "while the source is fenced, drained and verified exactly). The state lives in NATS KV",
  "(bucket chirp_reshard): a killed run is resumed by running the same command again.",
  "",
  "  chirp reshard --from -40 --to -20,20-40 [--replica-set rs1]   run or resume the workflow",
  "  chirp reshard status [--from -40] [--json]                    the workflow's state (all without --from)",
  "  chirp reshard complete --from -40                             after the write switch: drop the source's rows,",
  "                                                                rewrite shard-config (--env) with the targets",
  "  chirp reshard abort --from -40                                back to the source at any phase before complete:",
  "                                                                after the write switch, writes switch back (the",
  "                                                                targets' changes replayed into the source); then",
  "                                                                reads back, the target databases dropped, the state deleted",
  "",
  "options:",
  "  --replica-set <rs>   where the target databases go [the source's]",
  "  --batch <rows>       rows per copy batch [1000]",
  "  --stop-after <step>  create, copy, catch-up, verify, switch-reads or switch-writes [switch-writes];",
  "                       after switch-reads it keeps the targets current until Ctrl-C",
  "  --hold-ms <ms>       the write switch's hold budget (publish held -> publish serving); past it the switch",
  "                       is undone (writes back on the source, nothing lost) and tried again [800]; abort's too",
  "  --hold-attempts <n>  write switch (or abort's switch-back) attempts in one run before it stops [3]",
  "  --max-lag <ms>       a write switch starts only once catch-up lag is at most this [200]",
  "  --fence-wait <ms>    longest wait of the write switch for source transactions in flight (within --hold-ms) [1000]",
  "  --held-check <what>  compared while writes are held: counts, or digests (reads every row) [counts]",
  "  --follow             after the last step, keep the targets current from the binlog until Ctrl-C",
  "  --data-dir <dir>     the `npm start` data dir [.data/local]",
  "  --env <name>         shard topology shard-config/<name>.json, or a path to one [local]",
  "",
  "Finds the servers through NATS_URL and MYSQL_URL_<RS> (admin account) when set, otherwise",
  "through the description `npm start` writes into its data dir. Exits 2 on bad options, 1 on failure.",
].join("\n");

const STEPS: readonly ReshardStep[] = ["create", "copy", "catch-up", "verify", "switch-reads", "switch-writes"];

interface Parsed {
  action: "run" | "status" | "abort" | "complete";
  fenceWaitMs: number;
  holdMs: number;
  holdAttempts: number;
  maxLagMs: number;
  heldCheck: "counts" | "digests";
  from: string | undefined;
  to: string[];
  replicaSet: string | undefined;
  batch: number;
  stopAfter: ReshardStep;
  json: boolean;
  follow: boolean;
  dataDir: string;
  env: string;
}

export function parseArgs(argv: readonly string[]): Parsed {
  const args = [...argv];
  const json = args.includes("--json");
  if (json) args.splice(args.indexOf("--json"), 1);
  const follow = args.includes("--follow");
  if (follow) args.splice(args.indexOf("--follow"), 1);
  const from = takeOption(args, "from", "") || undefined;
  const toText = takeOption(args, "to", "");
  const replicaSet = takeOption(args, "replica-set", "") || undefined;
  const batchText = takeOption(args, "batch", "1000");
  const stopAfter = takeOption(args, "stop-after", "switch-writes") as ReshardStep;
  const fenceText = takeOption(args, "fence-wait", "1000");
  const holdText = takeOption(args, "hold-ms", String(DEFAULT_HOLD_MS));
  const attemptsText = takeOption(args, "hold-attempts", String(DEFAULT_HOLD_ATTEMPTS));
  const lagText = takeOption(args, "max-lag", String(DEFAULT_MAX_LAG_MS));
  const heldCheck = takeOption(args, "held-check", "counts");
  const dataDir = resolve(takeOption(args, "data-dir", DEFAULT_DATA_DIR));
  const env = takeOption(args, "env", "local");
  rejectUnknownFlags(args);
  let action: Parsed["action"] = "run";
  if (args[0] === "status" || args[0] === "abort" || args[0] === "complete") action = args.shift() as Parsed["action"];
  if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
  if (!/^[1-9][0-9]{0,5}$/.test(batchText)) throw new UsageError("--batch takes a number of rows, 1 to 999999");
  if (!/^[1-9][0-9]{0,5}$/.test(fenceText)) throw new UsageError("--fence-wait takes milliseconds, 1 to 999999");
  if (!/^[1-9][0-9]{0,5}$/.test(holdText)) throw new UsageError("--hold-ms takes milliseconds, 1 to 999999");
  if (!/^[1-9][0-9]?$/.test(attemptsText)) throw new UsageError("--hold-attempts takes a number, 1 to 99");
  if (!/^[1-9][0-9]{0,5}$/.test(lagText)) throw new UsageError("--max-lag takes milliseconds, 1 to 999999");
  if (heldCheck !== "counts" && heldCheck !== "digests") throw new UsageError("--held-check takes counts or digests");
  if (!STEPS.includes(stopAfter)) throw new UsageError(`--stop-after takes one of ${STEPS.join(", ")}`);
  if (action !== "status" && from === undefined) throw new UsageError("--from <shard> is needed");
  if (action === "run" && toText === "") throw new UsageError("--to <shard>,<shard>... is needed");
  if (action !== "run" && toText !== "") throw new UsageError(`--to is for a run, not ${action}`);
  return { action, from, to: toText === "" ? [] : toText.split(","), replicaSet, batch: Number(batchText), stopAfter, fenceWaitMs: Number(fenceText), holdMs: Number(holdText), holdAttempts: Number(attemptsText), maxLagMs: Number(lagText), heldCheck, json, follow, dataDir, env };
}

export async function run(argv: string[]): Promise<number> {
  const opts = parseArgs(argv);
  const config = loadShardConfig(opts.env);
  // The plan is checked before any server is asked: bad keyranges are usage errors.
  let plan: ReshardPlan | undefined;
  if (opts.action === "run") {
    try {
      plan = planReshard(config, opts.from!, opts.to, opts.replicaSet);
    } catch (err) {
      if (err instanceof ReshardPlanError) throw new UsageError(err.message);
      throw err;
    }
  }
  const sourceDatabase = (from: string): string => {
    const shard = config.shards.find((s) => s.name === from);
    if (shard === undefined) throw new UsageError(`no shard ${JSON.stringify(from)} in keyspace ${config.keyspace}`);
    return shard.database;
  };
  const found = findServers(opts.dataDir, config);
  if (typeof found === "string") {
    process.stderr.write(`chirp reshard: ${found}\n`);
    return EXIT_FAILURE;
  }
  const nc = await connect({ ...parseNatsUrl(found.natsUrl), timeout: 2000, name: "chirp-reshard" }).catch((err: unknown) => {
    throw new Error(`cannot reach NATS at ${found.natsUrl}: ${(err as Error).message}`);
  });
  try {
    const kv = await openReshardKv(nc);
    const topologyKv = await new Kvm(nc).open(TOPOLOGY_BUCKET).catch(() => undefined);
    const servers = await withLivePrimaries(nc, config.keyspace, found.servers);
    if (opts.action === "status") return await status(kv, config, servers, opts.from === undefined ? undefined : sourceDatabase(opts.from), opts.json);
    if (opts.action === "abort") {
      const held = await loadState(kv, reshardKey(config.keyspace, sourceDatabase(opts.from!)));
      const abortPlan = held === undefined ? undefined : planReshard(config, opts.from!, held.state.targets.map((t) => t.name), held.state.targets[0]!.replicaSet);
      const aborted = await abortReshard({
        keyspace: config.keyspace,
        sourceDatabase: sourceDatabase(opts.from!),
        servers,
        kv,
        ...(topologyKv === undefined ? {} : { topologyKv }),
        ...(abortPlan === undefined ? {} : { plan: abortPlan }),
        holdMs: opts.holdMs,
        holdAttempts: opts.holdAttempts,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      if (aborted === undefined) {
        process.stderr.write(`chirp reshard: no reshard of ${opts.from} to abort\n`);
        return EXIT_FAILURE;
      }
      process.stdout.write(`aborted the reshard of ${opts.from}: dropped ${aborted.targets.map((t) => t.database).join(", ")}; ${opts.from} serves as before\n`);
      return EXIT_OK;
    }
    if (opts.action === "complete") {
      const h = await loadState(kv, reshardKey(config.keyspace, sourceDatabase(opts.from!)));
      if (h === undefined) {
        process.stderr.write(`chirp reshard: no reshard of ${opts.from} to complete\n`);
        return EXIT_FAILURE;
      }
      if (h.state.phase !== "writes-switched" && h.state.phase !== "complete") {
        process.stderr.write(`chirp reshard: the reshard of ${opts.from} is at phase ${h.state.phase}: complete follows the write switch (run chirp reshard --from ${opts.from} --to ${h.state.targets.map((t) => t.name).join(",")} first)\n`);
        return EXIT_FAILURE;
      }
      plan = planReshard(config, opts.from!, h.state.targets.map((t) => t.name), h.state.targets[0]!.replicaSet);
      return await runWorkflow(plan, servers, kv, { ...opts, stopAfter: "complete" }, topologyKv, shardConfigPath(opts.env));
    }
    return await runWorkflow(plan!, servers, kv, opts, topologyKv, shardConfigPath(opts.env));
  } finally {
    await nc.close();
  }
}

async function runWorkflow(plan: ReshardPlan, servers: ReshardServers, kv: KV, opts: Parsed, topologyKv: KV | undefined, shardConfigFile: string): Promise<number> {
  const out = process.stderr;
  let lastLine = 0;
  const throttled = (line: string, force = false): void => {
    const now = performance.now();
    if (!force && now - lastLine < 1000) return;
    lastLine = now;
    out.write(`${line}\n`);
  };
  const stop = new AbortController();
  const onSignal = (): void => stop.abort(new Error("interrupted; run the same command again to resume"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const state = await runReshard({
      plan,
      servers,
      kv,
      batchRows: opts.batch,
      stopAfter: opts.stopAfter,
      ...(topologyKv === undefined ? {} : { topologyKv }),
      shardConfigFile,
      fenceWaitMs: opts.fenceWaitMs,
      holdMs: opts.holdMs,
      holdAttempts: opts.holdAttempts,
      maxLagMs: opts.maxLagMs,
      heldCheck: opts.heldCheck,
      follow: opts.follow,
      signal: stop.signal,
      log: (line) => out.write(`${line}\n`),
      onCopy: (p) =>
        throttled(`copy: ${p.rows}/${p.estimatedRows > p.rows ? `~${p.estimatedRows}` : p.rows} rows, ${p.tablesDone}/${p.tables} tables (now ${p.table}), ${Math.round(p.rate)} rows/s`),
      onCatchUp: (p) =>
        throttled(`catch-up: lag ${(p.lagMs / 1000).toFixed(3)} s, ${p.transactions} binlog transactions, ${p.rowsApplied} rows applied${p.current ? ", current" : ""}`, p.current),
    });
    process.stdout.write(`${formatStatus(state)}\n`);
    return state.verify !== undefined && !state.verify.ok && (state.phase === "verified" || state.phase === "catching-up") ? EXIT_FAILURE : EXIT_OK;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

async function status(kv: KV, config: ShardConfig, servers: ReshardServers, sourceDatabase: string | undefined, json: boolean): Promise<number> {
  const states: ReshardState[] = [];
  if (sourceDatabase !== undefined) {
    const h = await loadState(kv, reshardKey(config.keyspace, sourceDatabase));
    if (h !== undefined) states.push(h.state);
  } else {
    for await (const key of await kv.keys(`${config.keyspace}.>`)) {
      const h = await loadState(kv, key);
      if (h !== undefined) states.push(h.state);
    }
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(states, null, 2)}\n`);
    return EXIT_OK;
  }
  if (states.length === 0) {
    process.stdout.write(`no reshard in progress in keyspace ${config.keyspace} (bucket ${RESHARD_BUCKET})\n`);
    return EXIT_OK;
  }
  const texts: string[] = [];
  for (const s of states) texts.push([formatStatus(s), ...(await binlogLines(s, servers))].join("\n"));
  process.stdout.write(`${texts.join("\n\n")}\n`);
  return EXIT_OK;
}

/**
 * After the write switch, abort replays the targets' binlog from the saved
 * position: whether their current primary still has it, and binlog expiry on
 * their replica set's members (lib/reshard/binlog.ts).
 */
async function binlogLines(s: ReshardState, servers: ReshardServers): Promise<string[]> {
  if (s.phase !== "writes-switched" || s.reverse === undefined) return [];
  const rs = servers.replicaSets.find((r) => r.name === s.targets[0]!.replicaSet);
  if (rs === undefined) return [`WARNING: no replica set ${s.targets[0]!.replicaSet} among the servers: the targets' binlog was not checked`];
  const report = await inspectBinlog(s.reverse.gtid, rs.primary, [rs.primary, ...rs.replicas], servers.adminUser);
  const kept = (s.binlogKept ?? []).map((k) => `${k.member} (was ${k.expireLogsSeconds} s)`);
  return [
    ...(kept.length > 0 ? [`binlog expiry turned off by the write switch on ${kept.join(", ")}; complete or abort puts it back`] : []),
    ...formatBinlogReport(report, Date.now() - Date.parse(s.writeSwitch?.time ?? s.updateTime)),
  ];
}

function findServers(dataDir: string, config: ShardConfig): { natsUrl: string; servers: ReshardServers } | string {
  const found = findRunningInfra(dataDir, config);
  if (typeof found === "string") return found;
  return { natsUrl: found.natsUrl, servers: { replicaSets: [...found.replicaSets], adminUser: found.adminUser } };
}

/** The primaries the topology manager publishes win over the configured ones (a failover may have happened). */
async function withLivePrimaries(nc: NatsConnection, keyspace: string, servers: ReshardServers): Promise<ReshardServers> {
  try {
    const kv = await new Kvm(nc).open(TOPOLOGY_BUCKET);
    const live = await readTopology(kv, keyspace);
    if (live === undefined) return servers;
    return { ...servers, replicaSets: live.topology.replicaSets };
  } catch {
    return servers;
  }
}
