// Versioned SQL migrations, applied to every shard database on its primary
// (replicas get them through replication). Each database records what it has
// applied, with a checksum, in schema_migrations.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Connection, RowDataPacket } from "mysql2/promise";
import { quoteIdent, withMysql } from "./mysql-client.js";
import type { MysqlInfo, ShardInfo } from "../shard/types.js";

export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

const FILE_RE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  file: string;
  sql: string;
  /** sha256 (hex) of the file with line endings normalised to \n. */
  checksum: string;
}

export type MigrationErrorCode =
  | "MIGRATION_BAD_FILE"
  | "MIGRATION_CHECKSUM_MISMATCH"
  | "MIGRATION_MISSING"
  | "MIGRATION_FAILED";

export class MigrationError extends Error {
  override readonly name = "MigrationError";
  constructor(
    readonly code: MigrationErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface MigrateResult {
  /** Total migrations applied across all shards in this run (0 when up to date). */
  applied: number;
  shards: { shard: string; database: string; applied: number[] }[];
}

export interface MigrateOptions {
  mysql: MysqlInfo;
  /** Folder of NNNN_name.sql files; defaults to lib/db/migrations. */
  dir?: string;
  /** Limit to these shards (default: all of mysql.shards). */
  shards?: readonly ShardInfo[];
  log?: (line: string) => void;
}

export async function loadMigrations(dir = DEFAULT_MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const migrations: Migration[] = [];
  for (const file of entries) {
    const m = FILE_RE.exec(file);
    if (!m) throw new MigrationError("MIGRATION_BAD_FILE", `${file}: migration files are named NNNN_lower_snake.sql`);
    const version = Number(m[1]);
    if (version === 0) throw new MigrationError("MIGRATION_BAD_FILE", `${file}: versions start at 0001`);
    if (migrations.some((x) => x.version === version)) {
      throw new MigrationError("MIGRATION_BAD_FILE", `${file}: version ${m[1]} is used twice`);
    }
    const sql = (await readFile(join(dir, file), "utf8")).replaceAll("\r\n", "\n");
    const checksum = createHash("sha256").update(sql).digest("hex");
    migrations.push({ version, name: m[2] ?? "", file, sql, checksum });
  }
  return migrations;
}

/** Applies pending migrations to every shard database; creates databases if missing. */
export async function migrate(opts: MigrateOptions): Promise<MigrateResult> {
  const migrations = await loadMigrations(opts.dir);
  const shards = opts.shards ?? opts.mysql.shards;
  const results = await Promise.all(
    shards.map(async (shard) => {
      const rs = opts.mysql.replicaSets.find((r) => r.name === shard.replicaSet);
      if (!rs) throw new MigrationError("MIGRATION_FAILED", `shard ${shard.name}: unknown replica set ${shard.replicaSet}`);
      const applied = await withMysql(rs.primary, opts.mysql.adminUser, (c) => migrateDatabase(c, shard.database, migrations), {
        multipleStatements: true,
      });
      return { shard: shard.name, database: shard.database, applied };
    }),
  );
  const total = results.reduce((n, r) => n + r.applied.length, 0);
  const versions = [...new Set(results.flatMap((r) => r.applied))].sort((a, b) => a - b);
  opts.log?.(
    `migrations applied ${total}` +
      (total > 0 ? ` (versions ${versions.map(pad).join(", ")} on ${results.filter((r) => r.applied.length > 0).length} shards)` : ""),
  );
  return { applied: total, shards: results };
}

/**
 * Brings one database up to date on `conn` (a connection with
 * multipleStatements). Returns the versions applied. Serialised per database
 * with a named lock so concurrent starters cannot apply a version twice.
 */
export async function migrateDatabase(conn: Connection, database: string, migrations: readonly Migration[]): Promise<number[]> {
  const db = quoteIdent(database);
  await conn.query(`CREATE DATABASE IF NOT EXISTS ${db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await conn.query(`USE ${db}`);
  const lockName = `chirp.migrate.${database}`.slice(0, 64);
  const [[lock]] = await conn.query<RowDataPacket[]>("SELECT GET_LOCK(?, 60) AS ok", [lockName]);
  if (Number(lock?.["ok"]) !== 1) throw new MigrationError("MIGRATION_FAILED", `${database}: timed out waiting for the migration lock`);
  try {
    await conn.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
        version INT UNSIGNED NOT NULL PRIMARY KEY,
        name VARCHAR(255) NOT NULL,
        checksum CHAR(64) NOT NULL,
        applied_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
    );
    const [rows] = await conn.query<RowDataPacket[]>("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    const done = new Map<number, string>();
    for (const row of rows) {
      const version = Number(row["version"]);
      const known = migrations.find((m) => m.version === version);
      if (!known) {
        throw new MigrationError(
          "MIGRATION_MISSING",
          `${database}: applied migration ${pad(version)}_${row["name"]} has no file; restore it (never delete applied migrations)`,
        );
      }
      if (known.checksum !== row["checksum"]) {
        throw new MigrationError(
          "MIGRATION_CHECKSUM_MISMATCH",
          `${database}: ${known.file} changed after it was applied (checksum ${String(row["checksum"]).slice(0, 12)}... ` +
            `now ${known.checksum.slice(0, 12)}...); add a new migration instead of editing an applied one`,
        );
      }
      done.set(version, known.checksum);
    }
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      try {
        await conn.query(m.sql);
      } catch (err) {
        throw new MigrationError("MIGRATION_FAILED", `${database}: ${m.file} failed: ${(err as Error).message}`, { cause: err });
      }
      await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)", [
        m.version,
        m.name,
        m.checksum,
      ]);
      applied.push(m.version);
    }
    return applied;
  } finally {
    await conn.query("SELECT RELEASE_LOCK(?)", [lockName]);
  }
}

function pad(v: number): string {
  return String(v).padStart(4, "0");
}
