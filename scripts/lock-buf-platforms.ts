// Keeps package-lock.json complete for @bufbuild/buf's per-platform binaries.
//
// The registry mirror this project is developed against serves only the
// linux-x64 and linux-aarch64 builds of buf; `npm install` then writes a lock
// without the other platforms' entries, and `npm ci` (npm 11) refuses a lock
// that omits an optional dependency. This adds the entries npm would have
// written (no download address: npm resolves it from the registry on a
// machine of that platform). Run after changing the buf version:
//   node --import tsx scripts/lock-buf-platforms.ts
import { readFileSync, writeFileSync } from "node:fs";

const PLATFORMS: Record<string, { os: string; cpu: string }> = {
  "darwin-arm64": { os: "darwin", cpu: "arm64" },
  "darwin-x64": { os: "darwin", cpu: "x64" },
  "linux-aarch64": { os: "linux", cpu: "arm64" },
  "linux-armv7": { os: "linux", cpu: "arm" },
  "linux-x64": { os: "linux", cpu: "x64" },
  "win32-arm64": { os: "win32", cpu: "arm64" },
  "win32-x64": { os: "win32", cpu: "x64" },
};

type LockEntry = Record<string, unknown> & { version?: string; optionalDependencies?: Record<string, string> };
const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8")) as { packages: Record<string, LockEntry> };
const buf = lock.packages["node_modules/@bufbuild/buf"];
if (buf?.version === undefined) throw new Error("@bufbuild/buf is not in package-lock.json");

let added = 0;
for (const name of Object.keys(buf.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  if (lock.packages[key] !== undefined) continue;
  const platform = PLATFORMS[name.replace("@bufbuild/buf-", "")];
  if (platform === undefined) throw new Error(`unknown buf platform package ${name}`);
  lock.packages[key] = {
    version: buf.version,
    cpu: [platform.cpu],
    dev: true,
    license: "Apache-2.0",
    optional: true,
    os: [platform.os],
    engines: { node: ">=12" },
  };
  added++;
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1)));
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(added === 0 ? "package-lock.json already lists every buf platform" : `added ${added} buf platform entries`);
