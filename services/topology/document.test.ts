import { describe, expect, it } from "vitest";
import type { LiveTopology } from "../../lib/shard/topology.js";
import { heartbeatDatabases, nextTopology } from "./document.js";

const sets = [{ name: "rs0", primary: { name: "rs0-b", host: "h", port: 2 }, replicas: [] }];
const config = [
  { name: "-80", replicaSet: "rs0", database: "chirp_x80" },
  { name: "80-", replicaSet: "rs0", database: "chirp_80x" },
];

describe("nextTopology", () => {
  it("seeds the shards from the config when the KV has no document", () => {
    const t = nextTopology({ keyspace: "chirp", epoch: 1, replicaSets: sets, current: undefined, configShards: config });
    expect(t.shards).toEqual(config);
    expect(t.resharding).toBeUndefined();
  });

  it("carries a split's shards and resharding entries over a failover", () => {
    const current: LiveTopology = {
      keyspace: "chirp",
      epoch: 7,
      replicaSets: [{ name: "rs0", primary: { name: "rs0-a", host: "h", port: 1 }, replicas: [] }],
      shards: [...config, { name: "-40", replicaSet: "rs0", database: "chirp_x40", serving: false }, { name: "40-80", replicaSet: "rs0", database: "chirp_40x80", serving: false }],
      resharding: [{ source: "-80", targets: ["-40", "40-80"], reads: "targets", writes: "source" }],
      updateTime: "",
    };
    const t = nextTopology({ keyspace: "chirp", epoch: 8, replicaSets: sets, current, configShards: config });
    expect(t.shards).toEqual(current.shards);
    expect(t.resharding).toEqual(current.resharding);
    expect(t.replicaSets[0]!.primary.name).toBe("rs0-b");
    expect(t.epoch).toBe(8);
  });

  it("keeps the shards of a finished split that shard-config does not list yet", () => {
    const current: LiveTopology = {
      keyspace: "chirp",
      epoch: 9,
      replicaSets: sets,
      shards: [{ name: "-40", replicaSet: "rs0", database: "chirp_x40" }, { name: "40-80", replicaSet: "rs0", database: "chirp_40x80" }, config[1]!],
      updateTime: "",
    };
    const t = nextTopology({ keyspace: "chirp", epoch: 10, replicaSets: sets, current, configShards: config });
    expect(t.shards.map((s) => s.name)).toEqual(["-40", "40-80", "80-"]);
    expect("resharding" in t).toBe(false);
  });
});

describe("heartbeatDatabases", () => {
  const doc = (shards: LiveTopology["shards"]): LiveTopology => ({ keyspace: "chirp", epoch: 3, replicaSets: sets, shards, updateTime: "" });
  it("is the shard config's databases while the KV has no document", () => {
    expect(heartbeatDatabases("rs0", undefined, config)).toEqual(["chirp_x80", "chirp_80x"]);
    expect(heartbeatDatabases("rs1", undefined, config)).toEqual([]);
  });

  it("follows a split: the source until its writes switch, then the targets (not yet while they are not serving)", () => {
    const split = [{ name: "-40", replicaSet: "rs0", database: "chirp_x40" }, { name: "40-80", replicaSet: "rs0", database: "chirp_40x80" }];
    expect(heartbeatDatabases("rs0", doc([...config, ...split.map((s) => ({ ...s, serving: false }))]), config)).toEqual(["chirp_x80", "chirp_80x"]);
    expect(heartbeatDatabases("rs0", doc([config[1]!, ...split]), config)).toEqual(["chirp_80x", "chirp_x40", "chirp_40x80"]);
  });
});
