// Process entries (every service's main.ts, the topology manager, the
// gateway) bundled with esbuild before they are launched, so each process
// starts on plain node: no TypeScript loader hooks resolving every import, no
// transpiling in each of a dozen processes. Measured here: importing a
// service's modules took 3.4 s of CPU under `--import tsx`, 1.4 s as a bundle.
//
// node_modules stay external (node loads them as usual). Each module keeps
// its own import.meta.url, the source file's, so paths computed from it
// (shard-config/, the migrations, the web app's sources) resolve exactly as
// they do when the .ts files run directly.
import { mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build, type Plugin } from "esbuild";

/** Bundles `entries` (paths relative to `root`) into `outDir`; returns entry -> bundle path. */
export async function bundleEntries(root: string, entries: readonly string[], outDir: string): Promise<Map<string, string>> {
  await mkdir(outDir, { recursive: true });
  const names = new Map(entries.map((entry) => [entry, bundleName(entry)]));
  await build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries([...names].map(([entry, name]) => [name, entry])),
    outdir: outDir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    sourcemap: "linked",
    logLevel: "silent",
    plugins: [ownImportMetaUrl],
  });
  return new Map(entries.map((entry) => [entry, bundlePath(outDir, entry)]));
}

/** Where bundleEntries puts `entry`'s bundle. */
export function bundlePath(outDir: string, entry: string): string {
  return join(outDir, `${bundleName(entry)}.mjs`);
}

function bundleName(entry: string): string {
  return entry.replace(/\.ts$/, "").replaceAll("/", "--");
}

const ownImportMetaUrl: Plugin = {
  name: "own-import-meta-url",
  setup(b) {
    b.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const contents = source.includes("import.meta.url")
        ? source.replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href))
        : source;
      return { contents, loader: "ts" };
    });
  },
};

/**
 * A launcher's own bundle directory under `dataDir`: `bundles-<pid>-<random>`.
 * Removed at its exit; one left by a launcher that was killed (SIGKILL, a
 * crash) is removed by the next launcher, since its pid is gone.
 */
export async function makeOwnBundleDir(dataDir: string): Promise<string> {
  await mkdir(dataDir, { recursive: true });
  await sweepStaleBundleDirs(dataDir);
  return mkdtemp(join(dataDir, `bundles-${process.pid}-`));
}

/** Removes the bundle directories of launchers that no longer run; returns their names. */
export async function sweepStaleBundleDirs(dataDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dataDir).catch(() => [] as string[])) {
    const pid = /^bundles-(\d+)-/.exec(name)?.[1];
    if (pid === undefined || isRunning(Number(pid))) continue;
    await rm(join(dataDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
