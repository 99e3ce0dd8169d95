// What a reshard moves where: the source shard, the target shards (their
// keyranges tile the source's exactly), their databases, and how each table's
// rows are placed (its primary vindex from the VSchema). Pure: no I/O.
import { buildVSchema } from "../../shard-config/vschema.js";
import { compareKeyspaceIds, keyRangeContains } from "../shard/keyrange.js";
import { parseKeyRange, type ShardConfig } from "../shard/shard-config.js";
import type { ShardInfo } from "../shard/types.js";
import { binaryMd5Vindex, hashVindex } from "../shard/vindex.js";

/**
 * Where the write switch moves a database's sharded tables (the switch-back
 * moves the targets' there too), and where cleanup drops them (switch.ts).
 */
export function fenceDatabase(database: string): string {
  return `${database.slice(0, 54)}_resharded`;
}

export class ReshardPlanError extends Error {
  override readonly name = "ReshardPlanError";
}

/** How one table's rows are placed: the column of its primary vindex and the vindex. */
export interface TableRouting {
  readonly table: string;
  readonly column: string;
  readonly vindex: "hash" | "binary_md5";
}

export interface ReshardPlan {
  readonly keyspace: string;
  readonly source: ShardInfo;
  /** In keyrange order. */
  readonly targets: readonly ShardInfo[];
  /** Sharded tables by name; reference tables are not listed (never copied). */
  readonly tables: ReadonlyMap<string, TableRouting>;
  /** Tables the VSchema declares `reference`: present in every shard database, not copied. */
  readonly referenceTables: ReadonlySet<string>;
}

/**
 * Checks `from` is a shard of `config` and `to` (two or more keyranges) tiles
 * it exactly. Targets live on `replicaSet` (default: the source's), in
 * databases named after the source's: its `x40` suffix (the shard name with
 * the dash spelled x) becomes the target's (`chirp_x40` -> `chirp_x20`,
 * `t5_chirp_x40` -> `t5_chirp_x20`).
 */
export function planReshard(config: ShardConfig, from: string, to: readonly string[], replicaSet?: string): ReshardPlan {
  const source = config.shards.find((s) => s.name === from);
  if (source === undefined) throw new ReshardPlanError(`no shard ${JSON.stringify(from)} in keyspace ${config.keyspace} (shards: ${config.shards.map((s) => s.name).join(", ")})`);
  const rs = replicaSet ?? source.replicaSet;
  if (!config.replicaSets.some((r) => r.name === rs)) throw new ReshardPlanError(`no replica set ${JSON.stringify(rs)} (have ${config.replicaSets.map((r) => r.name).join(", ")})`);
  if (to.length < 2) throw new ReshardPlanError("--to needs two or more keyranges (a split), e.g. -20,20-40");
  const ranges = to.map((name) => {
    try {
      return { name, range: parseKeyRange(name) };
    } catch (err) {
      throw new ReshardPlanError((err as Error).message);
    }
  });
  const bytes = (hex: string): Buffer => Buffer.from(hex, "hex");
  ranges.sort((a, b) => compareKeyspaceIds(bytes(a.range.start), bytes(b.range.start)));
  const src = parseKeyRange(from);
  const problems: string[] = [];
  if (compareKeyspaceIds(bytes(ranges[0]!.range.start), bytes(src.start)) !== 0) problems.push(`${ranges[0]!.name} does not start where ${from} starts`);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1]!;
    const cur = ranges[i]!;
    if (prev.range.end === "" || compareKeyspaceIds(bytes(prev.range.end), bytes(cur.range.start)) !== 0) problems.push(`${prev.name} and ${cur.name} do not meet`);
  }
  const last = ranges[ranges.length - 1]!;
  const endsMatch = (last.range.end === "") === (src.end === "") && compareKeyspaceIds(bytes(last.range.end), bytes(src.end)) === 0;
  if (!endsMatch) problems.push(`${last.name} does not end where ${from} ends`);
  if (problems.length > 0) throw new ReshardPlanError(`--to must tile ${from} exactly: ${problems.join("; ")}`);

  const spelled = (shard: string): string => shard.replace("-", "x");
  if (!source.database.endsWith(spelled(from))) {
    throw new ReshardPlanError(`cannot name the target databases: ${source.database} does not end with ${spelled(from)}`);
  }
  const stem = source.database.slice(0, -spelled(from).length);
  const targets = ranges.map((r) => ({ name: r.name, replicaSet: rs, database: `${stem}${spelled(r.name)}` }));
  for (const t of targets) {
    if (config.shards.some((s) => s.database === t.database && s.name !== from)) throw new ReshardPlanError(`database ${t.database} already belongs to another shard`);
  }

  const vschema = buildVSchema(config);
  const tables = new Map<string, TableRouting>();
  const referenceTables = new Set<string>();
  for (const [table, def] of Object.entries(vschema.tables)) {
    if (def.type === "reference") {
      referenceTables.add(table);
      continue;
    }
    const primary = def.column_vindexes?.[0];
    if (primary === undefined) throw new ReshardPlanError(`table ${table} has no primary vindex`);
    const vindex = vschema.vindexes[primary.name]?.type;
    if (vindex !== "hash" && vindex !== "binary_md5") throw new ReshardPlanError(`table ${table}: vindex ${primary.name} is not supported`);
    tables.set(table, { table, column: primary.column, vindex });
  }
  return { keyspace: config.keyspace, source, targets, tables, referenceTables };
}

/** The keyspace id of a row's sharding value (as read from MySQL or the binlog). */
export function keyspaceIdOf(routing: TableRouting, value: unknown): Buffer {
  if (value === null || value === undefined) throw new ReshardPlanError(`${routing.table}.${routing.column} is NULL`);
  if (routing.vindex === "hash") return hashVindex(typeof value === "bigint" ? value : String(value));
  return binaryMd5Vindex(Buffer.isBuffer(value) ? value : String(value));
}

/** The target whose keyrange holds `ksid`; throws when none does (a row outside the source's range). */
export function targetFor(plan: ReshardPlan, ksid: Uint8Array): ShardInfo {
  for (const t of plan.targets) if (keyRangeContains(parseKeyRange(t.name), ksid)) return t;
  throw new ReshardPlanError(`keyspace id ${Buffer.from(ksid).toString("hex")} is outside ${plan.source.name}`);
}
