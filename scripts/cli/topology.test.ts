// `chirp topology` when nothing runs: a clear error, exit 1. (Against a live
// cluster it is exercised by test/integration/failover.test.ts.)
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { runChirp } from "./testing/run-chirp.js";


const chirp = (args: string[], env: NodeJS.ProcessEnv) => runChirp(args, env);

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
