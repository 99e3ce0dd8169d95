// Stores name tables with the keyspace, as one does through Vitess's vtgate:
// `SELECT handle FROM chirp.users WHERE id = ?`. The router turns that
// qualifier into the shard's database (`chirp_x40.users`) before preparing.
//
// Why not `USE <db>` on a connection shared by a member's shards: a prepared
// statement keeps the database it was prepared in, and mysql2 caches prepared
// statements per connection by SQL text alone. After `USE chirp_40x80`, a
// cached `SELECT ... FROM users` still reads chirp_x40 (checked on MariaDB
// 10.11). Qualified names make the text differ per database, cost no extra
// round trip, and an unqualified table fails loudly (no default database).

const IDENT_CHAR = /[A-Za-z0-9_$]/;

/**
 * Replaces every `<keyspace>.` (or `` `<keyspace>`. ``) qualifier outside
 * string literals and comments with `<database>.`. Anything else is left as
 * written.
 */
export function qualifyKeyspace(sql: string, keyspace: string, database: string): string {
  let out = "";
  let copied = 0;
  const n = sql.length;
  const bare = `${keyspace}.`;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      i = skipQuoted(sql, i, c);
    } else if (c === "`") {
      const end = skipQuoted(sql, i, "`");
      if (sql.slice(i + 1, end - 1) === keyspace && sql[end] === "." && boundaryBefore(sql, i)) {
        out += `${sql.slice(copied, i)}\`${database}\``;
        copied = end;
      }
      i = end;
    } else if (c === "#" || (c === "-" && sql[i + 1] === "-" && /\s/.test(sql[i + 2] ?? " "))) {
      const eol = sql.indexOf("\n", i);
      i = eol < 0 ? n : eol + 1;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (sql.startsWith(bare, i) && boundaryBefore(sql, i)) {
      out += `${sql.slice(copied, i)}${database}.`;
      i += bare.length;
      copied = i;
    } else {
      i++;
    }
  }
  return copied === 0 ? sql : out + sql.slice(copied);
}

/** Index just past the closing quote; a doubled quote or (outside backquotes) a backslash escapes. */
function skipQuoted(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (c === "\\" && quote !== "`") i += 2;
    else if (c === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return sql.length;
}

function boundaryBefore(sql: string, i: number): boolean {
  const prev = sql[i - 1];
  return prev === undefined || (!IDENT_CHAR.test(prev) && prev !== "." && prev !== "`");
}

/**
 * Memoised qualifyKeyspace for one keyspace: stores reuse a handful of SQL
 * texts, so each is rewritten once per database. Bounded: a caller building
 * SQL dynamically cannot grow it without limit.
 */
export function createQualifier(keyspace: string, maxEntries = 2000): (sql: string, database: string) => string {
  const cache = new Map<string, string>();
  return (sql, database) => {
    const key = `${database}\u0000${sql}`;
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = qualifyKeyspace(sql, keyspace, database);
      if (cache.size >= maxEntries) cache.clear();
      cache.set(key, hit);
    }
    return hit;
  };
}
