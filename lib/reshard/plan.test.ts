import { describe, expect, it } from "vitest";
import { loadShardConfig } from "../shard/shard-config.js";
import { hashVindex, handleKeyspaceId } from "../shard/vindex.js";
import { keyspaceIdOf, planReshard, targetFor } from "./plan.js";

const config = loadShardConfig("local");

describe("planReshard", () => {
  it("names the targets' databases after the source's and keeps the source's replica set", () => {
    const plan = planReshard(config, "-40", ["20-40", "-20"]);
    expect(plan.targets).toEqual([
      { name: "-20", replicaSet: "rs0", database: "chirp_x20" },
      { name: "20-40", replicaSet: "rs0", database: "chirp_20x40" },
    ]);
    expect(planReshard(config, "c0-", ["c0-e0", "e0-"], "rs0").targets.map((t) => [t.database, t.replicaSet])).toEqual([
      ["chirp_c0xe0", "rs0"],
      ["chirp_e0x", "rs0"],
    ]);
    // A three-way split and uneven bounds are splits too.
    expect(planReshard(config, "40-80", ["40-50", "50-6080", "6080-80"]).targets).toHaveLength(3);
  });

  it("refuses targets that do not tile the source, unknown shards and replica sets", () => {
    expect(() => planReshard(config, "-40", ["-20", "30-40"])).toThrow(/do not meet/);
    expect(() => planReshard(config, "-40", ["-20", "20-50"])).toThrow(/does not end/);
    expect(() => planReshard(config, "-40", ["10-20", "20-40"])).toThrow(/does not start/);
    expect(() => planReshard(config, "c0-", ["c0-e0", "e0-f0"])).toThrow(/does not end/);
    expect(() => planReshard(config, "-40", ["-40"])).toThrow(/two or more/);
    expect(() => planReshard(config, "-40", ["-2", "2-40"])).toThrow(/bad keyrange/);
    expect(() => planReshard(config, "-30", ["-20", "20-30"])).toThrow(/no shard/);
    expect(() => planReshard(config, "-40", ["-20", "20-40"], "rs9")).toThrow(/no replica set/);
  });

  it("places each table's rows by its VSchema primary vindex; reference tables are not copied", () => {
    const plan = planReshard(config, "-40", ["-20", "20-40"]);
    expect(plan.tables.get("users")).toEqual({ table: "users", column: "id", vindex: "hash" });
    expect(plan.tables.get("user_handles")).toEqual({ table: "user_handles", column: "handle_lower", vindex: "binary_md5" });
    expect(plan.tables.get("tweet_lookup")?.column).toBe("tweet_id");
    expect(plan.tables.has("heartbeat")).toBe(false);
    expect([...plan.referenceTables].sort()).toEqual(["heartbeat", "schema_migrations"]);

    // User 1's keyspace id is 166b40b44aba4bd6: in -20.
    expect(keyspaceIdOf(plan.tables.get("users")!, "1")).toEqual(hashVindex(1n));
    expect(targetFor(plan, keyspaceIdOf(plan.tables.get("users")!, "1")).name).toBe("-20");
    // A handle's row goes by md5 of the handle, not by its user.
    expect(keyspaceIdOf(plan.tables.get("user_handles")!, "test")).toEqual(handleKeyspaceId("test"));
    expect(() => targetFor(plan, Buffer.from("80", "hex"))).toThrow(/outside -40/);
    expect(() => keyspaceIdOf(plan.tables.get("users")!, null)).toThrow(/NULL/);
  });
});
