// Every table has one owner, written down in lib/db/README.md ("Who owns each
// table"); only the owner's code runs SQL on it, and the shared modules that
// table names are the only exceptions.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Owner {
  readonly owner: string;
  /** The row as written, which names the shared modules that may also touch the table. */
  readonly row: string;
}

function owners(): Map<string, Owner> {
  const text = readFileSync(join(ROOT, "lib/db/README.md"), "utf8");
  const out = new Map<string, Owner>();
  for (const m of text.matchAll(/^\| `([a-z_]+)` \| ([^|]+) \|(.*)$/gm)) out.set(m[1]!, { owner: m[2]!.trim(), row: m[0] });
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
    .map((f) => join(dir, f));
}

/** Tables a file's SQL names (the services qualify every table with the keyspace: `chirp.tweets`); comments left out. */
function tablesIn(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8")
    .split("\n")
    .filter((line) => !/^\s*(\/\/|\*|\/\*)/.test(line))
    .join("\n");
  return [...new Set([...text.matchAll(/\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+chirp\.([a-z_]+)/g)].map((m) => m[1]!))];
}

describe("table owners", () => {
  const table = owners();

  it("lists every table the migrations create", () => {
    const dir = join(ROOT, "lib/db/migrations");
    const created = readdirSync(dir)
      .filter((f) => f.endsWith(".sql"))
      .flatMap((f) => [...readFileSync(join(dir, f), "utf8").matchAll(/CREATE TABLE IF NOT EXISTS ([a-z_]+)/g)].map((m) => m[1]!));
    expect(created.length).toBeGreaterThan(10);
    expect(created.filter((t) => !table.has(t))).toEqual([]);
  });

  it("finds the services' SQL", () => {
    expect(tablesIn("services/tweet/store.ts")).toContain("tweets");
    expect(tablesIn("services/graph/store.ts")).toContain("follows");
  });

  it("no service runs SQL on a table it does not own", () => {
    const services = readdirSync(join(ROOT, "services"), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    const offenders = services.flatMap((service) =>
      sources(join("services", service)).flatMap((file) =>
        tablesIn(file)
          .filter((t) => table.get(t)?.owner !== service)
          .map((t) => `${file}: ${t} (owner: ${table.get(t)?.owner ?? "not listed"})`),
      ),
    );
    expect(offenders).toEqual([]);
  });

  it("the library touches a table only from the modules its row names", () => {
    const offenders = ["lib", "gateway"].flatMap((dir) =>
      sources(dir).flatMap((file) =>
        tablesIn(file)
          .filter((t) => {
            const o = table.get(t);
            return o === undefined || !(file.startsWith(`${o.owner}/`) || o.row.includes(file));
          })
          .map((t) => `${file}: ${t}`),
      ),
    );
    expect(offenders).toEqual([]);
  });
});
