// Typed loader for shard-config/<env>.json: the keyspace topology
// (shards -> replica sets -> members). See shard-config/README.md for the format.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export type MemberRole = "primary" | "replica";

export interface MemberConfig {
  /** Unique across the file, e.g. `rs0-a`. */
  name: string;
  /** The role at bootstrap; after a failover the live topology (NATS KV) wins. */
  role: MemberRole;
  /** Absent for local members: their ports are chosen at run time. */
  host?: string;
  port?: number;
}

export interface ReplicaSetConfig {
  name: string;
  members: MemberConfig[];
}

export interface ShardConfigEntry {
  /** A Vitess keyrange name: `-40`, `40-80`, `80-c0`, `c0-`. */
  name: string;
  replicaSet: string;
  /** The MySQL database holding this shard on its replica set. */
  database: string;
}

export interface ShardConfig {
  keyspace: string;
  replicaSets: ReplicaSetConfig[];
  shards: ShardConfigEntry[];
}

/** A keyrange as lower-case hex byte strings; "" is the open end of the ring. */
export interface KeyRange {
  start: string;
  end: string;
}

export class ShardConfigError extends Error {
  override readonly name = "ShardConfigError";
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid shard config ${source}: ${problems.join("; ")}`);
  }
}

export const SHARD_CONFIG_DIR = fileURLToPath(new URL("../../shard-config/", import.meta.url));

const KEYSPACE_RE = /^[a-z][a-z0-9_]{0,31}$/;
const NAME_RE = /^[a-z][a-z0-9_-]{0,31}$/;
// Plain identifiers never need backquotes in SQL or shell.
const DATABASE_RE = /^[a-z][a-z0-9_]{0,63}$/;
const KEYRANGE_RE = /^((?:[0-9a-f]{2})*)-((?:[0-9a-f]{2})*)$/;
const ENV_RE = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * Parses a Vitess shard name into its keyrange. Bounds are whole bytes in
 * lower-case hex; `-` alone is the whole keyspace (unsharded).
 */
export function parseKeyRange(name: string): KeyRange {
  const m = KEYRANGE_RE.exec(name);
  if (!m) throw new Error(`bad keyrange ${JSON.stringify(name)}: want lower-case hex bytes like "-40", "40-80", "c0-"`);
  const start = m[1] ?? "";
  const end = m[2] ?? "";
  if (start !== "" && end !== "" && start.padEnd(end.length, "0") >= end.padEnd(start.length, "0")) {
    throw new Error(`bad keyrange ${JSON.stringify(name)}: start must be below end`);
  }
  return { start, end };
}

/**
 * The database name convention used by the shipped configs: keyspace, "_", then
 * the shard name with "-" spelled "x" (`-40` -> `chirp_x40`). "x" is not a hex
 * digit, so the mapping is reversible.
 */
export function defaultShardDatabase(keyspace: string, shard: string): string {
  return `${keyspace}_${shard.replace("-", "x")}`;
}

/**
 * `env` names shard-config/<env>.json, or is a path to a file of the same
 * format (it contains a "/" or ends in .json): what CHIRP_SHARD_CONFIG holds.
 */
export function loadShardConfig(env = "local", dir = SHARD_CONFIG_DIR): ShardConfig {
  const file = shardConfigPath(env, dir);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ShardConfigError(file, [`cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ShardConfigError(file, [`not JSON: ${(err as Error).message}`]);
  }
  return validateShardConfig(value, file);
}

/** The file loadShardConfig(env, dir) reads. */
export function shardConfigPath(env = "local", dir = SHARD_CONFIG_DIR): string {
  const isPath = env.includes("/") || env.endsWith(".json");
  if (!isPath && !ENV_RE.test(env)) throw new ShardConfigError(env, [`bad environment name ${JSON.stringify(env)}`]);
  return isPath ? resolve(env) : join(dir, `${env}.json`);
}

/**
 * Rewrites a shard-config file after a split (decision 23): the `source`
 * entry is replaced, in place, by `targets`; everything else in the file is
 * kept. The result is validated before it replaces the file (write, then
 * rename, so a reader never sees half a file). Done already: no change.
 */
export function rewriteSplitShards(file: string, source: string, targets: readonly ShardConfigEntry[]): ShardConfig {
  const value = JSON.parse(readFileSync(file, "utf8")) as { shards?: ShardConfigEntry[] };
  const shards = value.shards ?? [];
  const at = shards.findIndex((s) => s.name === source);
  if (at < 0) {
    if (targets.every((t) => shards.some((s) => s.name === t.name))) return validateShardConfig(value, file);
    throw new ShardConfigError(file, [`no shard ${source} to replace`]);
  }
  shards.splice(at, 1, ...targets.map((t) => ({ name: t.name, replicaSet: t.replicaSet, database: t.database })));
  const config = validateShardConfig(value, file);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
  return config;
}

/** Checks everything at once so a broken file reports every problem. */
export function validateShardConfig(value: unknown, source = "shard config"): ShardConfig {
  const problems: string[] = [];
  const bad = (msg: string): void => void problems.push(msg);

  if (!isObject(value)) throw new ShardConfigError(source, ["top level must be an object"]);
  const keyspace = value["keyspace"];
  if (typeof keyspace !== "string" || !KEYSPACE_RE.test(keyspace)) bad(`keyspace must match ${KEYSPACE_RE}`);

  const replicaSets: ReplicaSetConfig[] = [];
  const memberNames = new Set<string>();
  const rawSets = value["replicaSets"];
  if (!Array.isArray(rawSets) || rawSets.length === 0) bad("replicaSets must be a non-empty array");
  else {
    rawSets.forEach((rs: unknown, i) => {
      const at = `replicaSets[${i}]`;
      if (!isObject(rs)) return bad(`${at} must be an object`);
      const name = rs["name"];
      if (typeof name !== "string" || !NAME_RE.test(name)) return bad(`${at}.name must match ${NAME_RE}`);
      if (replicaSets.some((r) => r.name === name)) bad(`${at}: duplicate replica set ${name}`);
      const members: MemberConfig[] = [];
      const rawMembers = rs["members"];
      if (!Array.isArray(rawMembers) || rawMembers.length === 0) bad(`${at}.members must be a non-empty array`);
      else {
        rawMembers.forEach((m: unknown, j) => {
          const mat = `${at}.members[${j}]`;
          const member = validateMember(m, mat, bad);
          if (!member) return;
          if (memberNames.has(member.name)) bad(`${mat}: duplicate member ${member.name}`);
          memberNames.add(member.name);
          members.push(member);
        });
        const primaries = members.filter((m) => m.role === "primary").length;
        if (primaries !== 1) bad(`${at} (${name}) must have exactly one primary, has ${primaries}`);
      }
      replicaSets.push({ name, members });
    });
  }

  const shards: ShardConfigEntry[] = [];
  const ranges: { name: string; range: KeyRange }[] = [];
  const rawShards = value["shards"];
  if (!Array.isArray(rawShards) || rawShards.length === 0) bad("shards must be a non-empty array");
  else {
    rawShards.forEach((s: unknown, i) => {
      const at = `shards[${i}]`;
      if (!isObject(s)) return bad(`${at} must be an object`);
      const { name, replicaSet, database } = s;
      if (typeof name !== "string") return bad(`${at}.name must be a keyrange string`);
      try {
        ranges.push({ name, range: parseKeyRange(name) });
      } catch (err) {
        bad(`${at}: ${(err as Error).message}`);
      }
      if (shards.some((x) => x.name === name)) bad(`${at}: duplicate shard ${name}`);
      if (typeof replicaSet !== "string" || !replicaSets.some((r) => r.name === replicaSet)) {
        bad(`${at} (${name}).replicaSet must name one of the replicaSets`);
      }
      if (typeof database !== "string" || !DATABASE_RE.test(database)) {
        bad(`${at} (${name}).database must match ${DATABASE_RE}`);
      } else if (shards.some((x) => x.database === database)) {
        bad(`${at} (${name}): database ${database} is used by another shard`);
      }
      shards.push({ name, replicaSet: String(replicaSet), database: String(database) });
    });
    if (ranges.length === rawShards.length) problems.push(...checkCoverage(ranges));
  }

  if (problems.length > 0) throw new ShardConfigError(source, problems);
  return { keyspace: keyspace as string, replicaSets, shards };
}

function validateMember(m: unknown, at: string, bad: (msg: string) => void): MemberConfig | undefined {
  if (!isObject(m)) return void bad(`${at} must be an object`);
  const { name, role, host, port } = m;
  if (typeof name !== "string" || !NAME_RE.test(name)) return void bad(`${at}.name must match ${NAME_RE}`);
  if (role !== "primary" && role !== "replica") return void bad(`${at} (${name}).role must be "primary" or "replica"`);
  const member: MemberConfig = { name, role };
  if (host !== undefined || port !== undefined) {
    if (typeof host !== "string" || host === "") bad(`${at} (${name}).host must be a non-empty string when port is set`);
    else member.host = host;
    if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
      bad(`${at} (${name}).port must be an integer 1-65535 when host is set`);
    } else member.port = port;
  }
  return member;
}

/** The shards must tile the ring exactly: no gap, no overlap. */
function checkCoverage(ranges: { name: string; range: KeyRange }[]): string[] {
  const sorted = [...ranges].sort((a, b) => cmpStart(a.range.start, b.range.start));
  const problems: string[] = [];
  let expect = "";
  for (const { name, range } of sorted) {
    if (range.start !== expect) {
      problems.push(
        range.start > expect
          ? `keyrange gap before shard ${name} (previous shard ends at ${expect || "the start"})`
          : `shard ${name} overlaps the previous shard`,
      );
    }
    expect = range.end;
    if (range.end === "" && sorted[sorted.length - 1]?.name !== name) {
      problems.push(`shard ${name} runs to the end of the keyspace but is not the last shard`);
    }
  }
  if (expect !== "") problems.push(`keyrange gap after ${expect}: the last shard must end open (like "c0-")`);
  return problems;
}

function cmpStart(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
