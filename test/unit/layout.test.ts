// The code's layout rules (docs/architecture.md, "Where the code lives"):
// the runtime (lib/, services/, gateway/) never imports the local-cluster
// harness (devcluster/), which starts servers for `npm start`, tests and
// benchmarks and is not shipped in the image.
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const RUNTIME = ["lib", "services", "gateway"];

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.includes("web/"))
    .map((f) => join(dir, f));
}

/** Repo-relative targets of a file's relative imports (static and dynamic). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const specs = [...text.matchAll(/(?:from|import\()\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) => m[1]!);
  return specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)));
}

describe("code layout", () => {
  const runtime = RUNTIME.flatMap(sources);

  it("finds the runtime sources", () => {
    expect(runtime.length).toBeGreaterThan(100);
    expect(runtime).toContain(join("lib", "shard", "router.ts"));
  });

  it("no runtime file imports the local-cluster harness", () => {
    const offenders = runtime.flatMap((file) => importsOf(file).filter((t) => t.startsWith("devcluster/")).map((t) => `${file} -> ${t}`));
    expect(offenders).toEqual([]);
  });
});
