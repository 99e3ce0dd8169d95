// The exported VSchema against the schema the migrations create.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_MIGRATIONS_DIR } from "../lib/db/migrate.js";
import { ShardConfigError, loadShardConfig } from "../lib/shard/shard-config.js";
import { buildVSchema, type VSchemaKeyspace } from "./vschema.js";

/** Tables and their columns, from CREATE TABLE statements in `sql`. */
function tablesIn(sql: string): Map<string, Set<string>> {
  const tables = new Map<string, Set<string>>();
  for (const m of sql.matchAll(/CREATE TABLE IF NOT EXISTS (\w+) \(([\s\S]*?)\n\s*\) ENGINE/g)) {
    const columns = new Set<string>();
    for (const line of (m[2] ?? "").split("\n")) {
      const col = /^\s*(\w+)\s+[A-Z]/.exec(line)?.[1];
      if (col && !["PRIMARY", "KEY", "UNIQUE", "INDEX", "CONSTRAINT"].includes(col)) columns.add(col);
    }
    tables.set(m[1] ?? "", columns);
  }
  for (const m of sql.matchAll(/ALTER TABLE (\w+)([\s\S]*?);/g)) {
    const columns = tables.get(m[1] ?? "") ?? new Set<string>();
    for (const add of (m[2] ?? "").matchAll(/ADD COLUMN (\w+)/g)) columns.add(add[1] ?? "");
    tables.set(m[1] ?? "", columns);
  }
  return tables;
}

function schemaTables(): Map<string, Set<string>> {
  const all = new Map<string, Set<string>>();
  const files = readdirSync(DEFAULT_MIGRATIONS_DIR).filter((f) => f.endsWith(".sql"));
  // The migrator creates its own bookkeeping table on every shard.
  const sources = [
    ...files.map((f) => readFileSync(join(DEFAULT_MIGRATIONS_DIR, f), "utf8")),
    readFileSync(new URL("../lib/db/migrate.ts", import.meta.url), "utf8"),
  ];
  for (const sql of sources) for (const [t, cols] of tablesIn(sql)) all.set(t, new Set([...(all.get(t) ?? []), ...cols]));
  return all;
}

// Fields of vschema.proto's Keyspace, Vindex, Table and ColumnVindex messages.
const KEYSPACE_FIELDS = ["sharded", "vindexes", "tables", "require_explicit_routing", "foreign_key_mode", "multi_tenant_spec"];
const VINDEX_FIELDS = ["type", "params", "owner"];
const TABLE_FIELDS = ["type", "column_vindexes", "auto_increment", "columns", "pinned", "column_list_authoritative", "source"];
const COLUMN_VINDEX_FIELDS = ["column", "name", "columns"];
// Vitess vindex types that are unique and functional, so they can be a primary vindex.
const PRIMARY_VINDEX_TYPES = ["hash", "binary_md5"];

describe("buildVSchema", () => {
  const vschema: VSchemaKeyspace = buildVSchema(loadShardConfig("local"));
  const schema = schemaTables();

  it("has an entry for every table the migrations create, and no other", () => {
    expect(schema.size).toBeGreaterThanOrEqual(9); // the parser found the migrations' tables and schema_migrations
    expect(Object.keys(vschema.tables).sort()).toEqual([...schema.keys()].sort());
  });

  it("is JSON that uses only vschema.proto field names", () => {
    const json: unknown = JSON.parse(JSON.stringify(vschema));
    expect(json).toEqual(vschema);
    const keys = (o: object) => Object.keys(o);
    expect(keys(vschema).every((k) => KEYSPACE_FIELDS.includes(k))).toBe(true);
    expect(vschema.sharded).toBe(true);
    for (const v of Object.values(vschema.vindexes)) expect(keys(v).every((k) => VINDEX_FIELDS.includes(k))).toBe(true);
    for (const t of Object.values(vschema.tables)) {
      expect(keys(t).every((k) => TABLE_FIELDS.includes(k))).toBe(true);
      for (const cv of t.column_vindexes ?? []) expect(keys(cv).every((k) => COLUMN_VINDEX_FIELDS.includes(k))).toBe(true);
    }
    // Ids are Snowflake ids, never Vitess sequences.
    expect(JSON.stringify(vschema)).not.toContain("auto_increment");
  });

  it("names only declared vindexes, and uses every one", () => {
    const used = new Set<string>();
    for (const [table, t] of Object.entries(vschema.tables)) {
      for (const cv of t.column_vindexes ?? []) {
        expect(vschema.vindexes, `${table}.${cv.column}`).toHaveProperty(cv.name);
        used.add(cv.name);
      }
    }
    expect([...used].sort()).toEqual(Object.keys(vschema.vindexes).sort());
  });

  it("gives every sharded table a unique functional primary vindex; reference tables none", () => {
    for (const [table, t] of Object.entries(vschema.tables)) {
      if (t.type === "reference") {
        expect(t.column_vindexes, table).toBeUndefined();
        continue;
      }
      expect(t.type, table).toBeUndefined();
      const primary = t.column_vindexes?.[0];
      expect(primary, table).toBeDefined();
      expect(PRIMARY_VINDEX_TYPES, table).toContain(vschema.vindexes[primary!.name]?.type);
    }
    expect(vschema.tables["users"]?.column_vindexes?.[0]).toEqual({ column: "id", name: "hash" });
    expect(vschema.tables["user_handles"]?.column_vindexes?.[0]).toEqual({ column: "handle_lower", name: "binary_md5" });
    expect(vschema.tables["user_emails"]?.column_vindexes?.[0]).toEqual({ column: "email_lower", name: "binary_md5" });
    expect(vschema.tables["tweets"]?.column_vindexes?.[0]).toEqual({ column: "author_id", name: "hash" });
    expect(vschema.tables["tweet_likes"]?.column_vindexes?.[0]).toEqual({ column: "author_id", name: "hash" });
    expect(vschema.tables["tweet_lookup"]?.column_vindexes?.[0]).toEqual({ column: "tweet_id", name: "hash" });
    expect(vschema.tables["likes"]?.column_vindexes?.[0]).toEqual({ column: "user_id", name: "hash" });
    expect(vschema.tables["media"]?.column_vindexes?.[0]).toEqual({ column: "owner_id", name: "hash" });
    expect(vschema.tables["media_lookup"]?.column_vindexes?.[0]).toEqual({ column: "media_id", name: "hash" });
    expect(vschema.tables["search_docs"]?.column_vindexes?.[0]).toEqual({ column: "tweet_id", name: "hash" });
    expect(vschema.tables["search_postings"]?.column_vindexes?.[0]).toEqual({ column: "tweet_id", name: "hash" });
    expect(vschema.tables["schema_migrations"]).toEqual({ type: "reference" });
    expect(vschema.tables["heartbeat"]).toEqual({ type: "reference" });
  });

  it("shards every table by a column it has", () => {
    const missing: string[] = [];
    for (const [table, t] of Object.entries(vschema.tables)) {
      for (const cv of t.column_vindexes ?? []) if (!schema.get(table)?.has(cv.column)) missing.push(`${table}.${cv.column}`);
    }
    expect(missing).toEqual([]);
  });

  it("refuses to export a keyspace whose shards do not tile the ring", () => {
    const cfg = loadShardConfig("local");
    cfg.shards = cfg.shards.filter((s) => s.name !== "40-80");
    expect(() => buildVSchema(cfg)).toThrow(ShardConfigError);
  });
});
