import { describe, expect, it } from "vitest";
import {
  ShardConfigError,
  defaultShardDatabase,
  loadShardConfig,
  parseKeyRange,
  validateShardConfig,
} from "./shard-config.js";

describe("loadShardConfig", () => {
  it("loads the local topology", () => {
    const cfg = loadShardConfig("local");
    expect(cfg.keyspace).toBe("chirp");
    expect(cfg.replicaSets.map((r) => r.name)).toEqual(["rs0", "rs1"]);
    expect(cfg.shards.map((s) => [s.name, s.replicaSet])).toEqual([
      ["-40", "rs0"],
      ["40-80", "rs0"],
      ["80-c0", "rs1"],
      ["c0-", "rs1"],
    ]);
    for (const s of cfg.shards) expect(s.database).toBe(defaultShardDatabase(cfg.keyspace, s.name));
  });

  it("rejects an unknown environment with a ShardConfigError", () => {
    expect(() => loadShardConfig("no-such-env")).toThrow(ShardConfigError);
  });
});

describe("validateShardConfig", () => {
  const good = () => ({
    keyspace: "chirp",
    replicaSets: [{ name: "rs0", members: [{ name: "rs0-a", role: "primary" }] }],
    shards: [
      { name: "-80", replicaSet: "rs0", database: "chirp_x80" },
      { name: "80-", replicaSet: "rs0", database: "chirp_80x" },
    ],
  });

  it("accepts a two-shard ring", () => {
    expect(validateShardConfig(good()).shards).toHaveLength(2);
  });

  it("reports every problem at once", () => {
    const cfg = good();
    cfg.shards[1] = { name: "c0-", replicaSet: "rs9", database: "Bad-Name" };
    cfg.replicaSets[0]!.members.push({ name: "rs0-b", role: "primary" });
    try {
      validateShardConfig(cfg, "test");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ShardConfigError);
      const problems = (err as ShardConfigError).problems.join("\n");
      expect(problems).toMatch(/exactly one primary/);
      expect(problems).toMatch(/replicaSet/);
      expect(problems).toMatch(/database/);
      expect(problems).toMatch(/gap/);
    }
  });

  it("rejects overlapping ranges", () => {
    const cfg = good();
    cfg.shards.push({ name: "40-", replicaSet: "rs0", database: "chirp_40x" });
    expect(() => validateShardConfig(cfg)).toThrow(/overlaps|not the last/);
  });
});

describe("parseKeyRange", () => {
  it("parses Vitess names", () => {
    expect(parseKeyRange("-40")).toEqual({ start: "", end: "40" });
    expect(parseKeyRange("80-c0")).toEqual({ start: "80", end: "c0" });
    expect(parseKeyRange("-")).toEqual({ start: "", end: "" });
  });
  it("rejects malformed names", () => {
    for (const bad of ["40", "4-8", "C0-", "80-40", "x-"]) expect(() => parseKeyRange(bad)).toThrow();
  });
});
