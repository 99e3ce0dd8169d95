// The chirp CLI's commands. A few runs go through bin/chirp.js as a child
// process, the way `npx chirp` does; the rest call main() in this process.
import { describe, expect, it } from "vitest";
import { runChirp, runChirpInProcess, runChirpInProcessEach } from "./testing/run-chirp.js";
import { loadShardConfig } from "../../lib/shard/shard-config.js";
import { buildVSchema } from "../../shard-config/vschema.js";

const chirp = (...args: string[]) => runChirpInProcess(args);

describe("chirp CLI", () => {
  it("shard-of <userId> prints the keyspace id and shard", async () => {
    expect(await runChirp(["shard-of", "1"])).toEqual({ code: 0, stdout: "166b40b44aba4bd6 -40\n", stderr: "" });
    expect((await chirp("shard-of", "4")).stdout).toBe("d2fd8867d50d2dfe c0-\n");
    expect((await chirp("shard-of", "--env", "local", "18446744073709551615")).stdout).toBe("355550b2150e2451 -40\n");
  });

  it("shard-of @handle prints the handle's lookup keyspace id (md5 of the lower-cased handle) and shard", async () => {
    // md5("test") = 098f6bcd4621d373cade4e832627b4f6
    const want = { code: 0, stdout: "098f6bcd4621d373cade4e832627b4f6 -40\n", stderr: "" };
    expect(await chirp("shard-of", "@test")).toEqual(want);
    expect(await chirp("shard-of", "@TeSt")).toEqual(want);
  });

  it("vschema prints the VSchema as JSON", async () => {
    const run = await chirp("vschema");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(buildVSchema(loadShardConfig("local")));
  });

  it("exits 2 with one error line on bad input", async () => {
    const bad = [
      ["shard-of"],
      ["shard-of", "abc"],
      ["shard-of", "-1"],
      ["shard-of", "18446744073709551616"],
      ["shard-of", "1", "2"],
      ["shard-of", "@"],
      ["shard-of", "@no-dashes"],
      ["shard-of", "--env"],
      ["shard-of", "--verbose", "1"],
      ["vschema", "extra"],
      ["reshard", "--from", "-40", "--to", "-20,30-40"],
      ["reshard", "--from", "-40", "--to", "-20,20-40", "--batch", "0"],
    ];
    const runs = await runChirpInProcessEach(bad);
    // And through bin/chirp.js: the exit code reaches the shell.
    expect((await runChirp(bad[1]!)).code).toBe(2);
    runs.forEach((run, i) => {
      const what = bad[i]!.join(" ");
      expect(run.code, what).toBe(2);
      expect(run.stdout, what).toBe("");
      expect(run.stderr.trimEnd().split("\n"), what).toHaveLength(1);
    });
  });

  it("exits 2 with the usage on a missing or unknown command; help exits 0", async () => {
    for (const args of [[], ["no-such-command"]]) {
      const run = await chirp(...args);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain("usage: chirp");
    }
    const help = await chirp("help");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("shard-of");
  });
});
