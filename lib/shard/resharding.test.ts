import { describe, expect, it } from "vitest";
import { ShardMap } from "./keyrange.js";
import { distinctDatabases, routingLayout, withResharding } from "./resharding.js";
import type { LiveTopology, ReshardingEntry } from "./topology.js";

const base: LiveTopology = {
  keyspace: "chirp",
  epoch: 1,
  replicaSets: [
    { name: "rs0", primary: { name: "a", host: "h", port: 1 }, replicas: [] },
    { name: "rs1", primary: { name: "b", host: "h", port: 2 }, replicas: [] },
  ],
  shards: [
    { name: "-40", replicaSet: "rs0", database: "chirp_x40" },
    { name: "40-", replicaSet: "rs0", database: "chirp_40x" },
    { name: "-20", replicaSet: "rs1", database: "chirp_x20", serving: false },
    { name: "20-40", replicaSet: "rs1", database: "chirp_20x40", serving: false },
  ],
  updateTime: "",
};
const split = (reads: ReshardingEntry["reads"], writes: ReshardingEntry["writes"]): LiveTopology => ({
  ...base,
  resharding: [{ source: "-40", targets: ["-20", "20-40"], reads, writes }],
});

describe("routingLayout", () => {
  it("leaves targets out of the ring until reads switch; writes to targets go to the source", () => {
    const l = routingLayout(split("source", "source"));
    expect(l.ring.map((s) => s.name)).toEqual(["-40", "40-"]);
    expect(l.writeShards.get("-20")).toEqual({ name: "-20", replicaSet: "rs0", database: "chirp_x40" });
    expect(l.held.size).toBe(0);
    expect(l.problems).toEqual([]);
  });

  it("puts the targets in the ring once reads switch, writes still on the source", () => {
    const l = routingLayout(split("targets", "source"));
    const map = new ShardMap(l.ring);
    expect(map.shards.map((s) => s.name)).toEqual(["-20", "20-40", "40-"]);
    expect(l.writeShards.get("20-40")!.database).toBe("chirp_x40");
    expect(l.writeShards.get("40-")!.database).toBe("chirp_40x");
  });

  it("holds writes of the source and the targets while writes are held", () => {
    const l = routingLayout(split("targets", "held"));
    expect([...l.held].sort()).toEqual(["-20", "-40", "20-40"]);
    expect(l.writeShards.get("-20")!.database).toBe("chirp_x40");
  });

  it("writes to the targets themselves once writes switch", () => {
    const l = routingLayout(split("targets", "targets"));
    expect(l.writeShards.get("-20")!.database).toBe("chirp_x20");
    expect(l.held.size).toBe(0);
  });

  it("lists one shard per database to walkers: a split's first target stands for the source until writes switch", () => {
    const walk = (t: LiveTopology): string[] => {
      const l = routingLayout(t);
      return distinctDatabases(new ShardMap(l.ring).shards, l.writeShards).map((s) => `${s.name}@${s.database}`);
    };
    expect(walk(split("source", "source"))).toEqual(["-40@chirp_x40", "40-@chirp_40x"]);
    expect(walk(split("targets", "source"))).toEqual(["-20@chirp_x40", "40-@chirp_40x"]);
    expect(walk(split("targets", "held"))).toEqual(["-20@chirp_x40", "40-@chirp_40x"]);
    expect(walk(split("targets", "targets"))).toEqual(["-20@chirp_x20", "20-40@chirp_20x40", "40-@chirp_40x"]);
  });

  it("names entries whose shards are missing", () => {
    const l = routingLayout({ ...base, resharding: [{ source: "-40", targets: ["-20", "20-30"], reads: "targets", writes: "source" }] });
    expect(l.problems).toEqual(["resharding: target shard 20-30 is not in the topology"]);
  });

  it("withResharding changes one entry and drops it on undefined", () => {
    const t = split("source", "source");
    expect(withResharding(t, "-40", { reads: "targets" })).toEqual([{ source: "-40", targets: ["-20", "20-40"], reads: "targets", writes: "source" }]);
    expect(withResharding(t, "-40", undefined)).toBeUndefined();
  });
});
