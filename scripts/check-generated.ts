// Fails when committed generated files are stale: the exported
// third_party/proto/buf/validate/validate.proto, and gen/ as `buf generate`
// would write it now. Run by `npm run check`.

import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join, relative, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { checkValidateProto } from "./export-protovalidate-proto.js";

const run = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const genDir = join(repoRoot, "gen");

/** Lists the files under dir as paths relative to it; empty if dir is missing. */
async function listFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return [];
    }
    throw err;
  }
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

/** Returns one line per file that differs between the committed and fresh trees. */
async function diffTrees(committedDir: string, freshDir: string): Promise<string[]> {
  const [committed, fresh] = await Promise.all([listFiles(committedDir), listFiles(freshDir)]);
  const committedSet = new Set(committed);
  const freshSet = new Set(fresh);
  const problems: string[] = [];
  for (const file of fresh) {
    if (!committedSet.has(file)) {
      problems.push(`  missing: gen/${file}`);
    }
  }
  for (const file of committed) {
    if (!freshSet.has(file)) {
      problems.push(`  extra:   gen/${file}`);
      continue;
    }
    const [a, b] = await Promise.all([
      readFile(join(committedDir, file)),
      readFile(join(freshDir, file)),
    ]);
    if (!a.equals(b)) {
      problems.push(`  changed: gen/${file}`);
    }
  }
  return problems;
}

async function main(): Promise<number> {
  let failed = false;
  const validateProblem = await checkValidateProto();
  if (validateProblem !== undefined) {
    console.error(validateProblem);
    failed = true;
  }

  const outBase = await mkdtemp(join(tmpdir(), "chirp-gen-"));
  try {
    // buf and protoc-gen-es come from node_modules/.bin, also outside npm scripts.
    const path = [join(repoRoot, "node_modules", ".bin"), process.env["PATH"] ?? ""].join(delimiter);
    try {
      await run("buf", ["generate", "--output", outBase], {
        cwd: repoRoot,
        env: { ...process.env, PATH: path },
      });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      console.error(`buf generate failed:\n${e.stderr?.trim() || e.message}`);
      return 1;
    }
    const problems = await diffTrees(genDir, join(outBase, "gen"));
    if (problems.length > 0) {
      console.error(problems.join("\n"));
      console.error("gen/ is stale: run npm run generate");
      failed = true;
    }
  } finally {
    await rm(outBase, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
