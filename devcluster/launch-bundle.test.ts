import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { makeOwnBundleDir, sweepStaleBundleDirs } from "./launch-bundle.js";

describe("launchers' bundle directories", () => {
  const data = mkdtempSync(join(tmpdir(), "chirp-bundles-"));
  afterAll(() => rmSync(data, { recursive: true, force: true }));

  it("are named by their launcher's pid, and a dead launcher's is swept by the next one; live and foreign ones stay", async () => {
    // A pid that ran and is gone.
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid;
    for (const name of [`bundles-${dead}-abc123`, `bundles-${process.pid}-def456`, "bundles-xyz789", "local"]) mkdirSync(join(data, name));
    const own = await makeOwnBundleDir(data);
    expect(own.startsWith(join(data, `bundles-${process.pid}-`))).toBe(true);
    expect(existsSync(join(data, `bundles-${dead}-abc123`))).toBe(false);
    for (const kept of [`bundles-${process.pid}-def456`, "bundles-xyz789", "local"]) expect(existsSync(join(data, kept))).toBe(true);
    expect(await sweepStaleBundleDirs(data)).toEqual([]);
  });
});
