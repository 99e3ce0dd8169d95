// `chirp seed` loads the whole socfb-Reed98 graph through the public API (the
// gateway, with the mesh as `npm start` runs it): every user ends with the
// exact follower and following counts of the graph, and a second run changes
// nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REED98_EDGES, degrees, readEdgeList } from "../../scripts/cli/dataset.js";
import { seed } from "../../scripts/cli/seed.js";
import { startLocalCluster, type RunningInfra } from "../../services/lib/cluster/index.js";
import { launchMesh, serviceInfraEnv, topologyInfraEnv, type Mesh } from "../../services/lib/launch.js";
import { loadShardConfig } from "../../services/lib/shard-config.js";

let infra: RunningInfra;
let mesh: Mesh;

beforeAll(async () => {
  infra = await startLocalCluster({ ephemeral: true, log: () => {} });
  mesh = await launchMesh({
    env: { ...serviceInfraEnv(infra), LOG_LEVEL: "warn" },
    topologyEnv: topologyInfraEnv(infra, loadShardConfig("local")),
    ports: "ephemeral",
  });
});

afterAll(async () => {
  await mesh?.stop();
  await infra?.stop();
});

describe("chirp seed", () => {
  const graph = readEdgeList(REED98_EDGES);
  const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

  it("gives every socfb-Reed98 user the exact counts of the graph", { timeout: 600_000 }, async () => {
    const result = await seed({ gatewayUrl: mesh.gatewayUrl, graph, handlePrefix: "reed98_", concurrency: 32, log: quiet });
    expect(result.users).toHaveLength(962);
    expect(result.follows).toBe(2 * 18_812);
    expect(result.mismatches).toEqual([]);
  });

  it("is idempotent: a second run finds the same accounts and changes no count", { timeout: 600_000 }, async () => {
    const small = readEdgeList(REED98_EDGES, 50);
    const again = await seed({ gatewayUrl: mesh.gatewayUrl, graph: small, handlePrefix: "reed98_", concurrency: 16, log: quiet });
    // Users 0-49 already exist with all their Reed98 friendships: signing up
    // again logs in, and re-following the friendships among them must leave
    // every count at the full graph's degree.
    const full = degrees(graph);
    expect(again.users).toHaveLength(50);
    expect(again.counts.map((c) => [c.followers, c.following])).toEqual(again.counts.map((c) => [full[c.n], full[c.n]]));
  });
});
