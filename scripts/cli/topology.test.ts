// `chirp topology` when nothing runs: a clear error, exit 1. (Against a live
// cluster it is exercised by test/integration/failover.test.ts.)
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../bin/chirp.js", import.meta.url));

function chirp(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

it("says Chirp is not running when the data dir has no running system", async () => {
  const dir = await mkdtemp(join(tmpdir(), "chirp-topology-"));
  try {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "NATS_URL" && !k.startsWith("MYSQL_URL")));
    const out = await chirp(["topology", "--data-dir", dir], env);
    expect(out.code).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toMatch(/not running/);
    expect((await chirp(["topology", "--bogus"], env)).code).toBe(2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
