// `chirp seed` loads a socfb-Reed98 graph through the public API (the
// gateway, with the mesh as `npm start` runs it): every user ends with the
// exact follower and following counts of the graph, and a second run changes
// nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REED98_EDGES, degrees, readEdgeList } from "../../scripts/cli/dataset.js";
import { seed } from "../../scripts/cli/seed.js";
import type { Mesh } from "../../devcluster/launch.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
let mesh: Mesh;

beforeAll(async () => {
  system = await startSystem({ router: false });
  mesh = system.mesh;
});

afterAll(async () => {
  await system?.stop();
});

describe("chirp seed", () => {
  // The first 100 people of socfb-Reed98 and every friendship among them: the
  // whole graph (962 people, 18,812 friendships, 962 argon2 sign-ups) is
  // minutes of work for what these checks show; `npx chirp seed` and
  // `npm run bench` load all of it. The dataset itself is checked whole in
  // scripts/cli/dataset.test.ts.
  const graph = readEdgeList(REED98_EDGES, 100);
  const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

  it("gives every user of a socfb-Reed98 subgraph the exact counts of the graph", async () => {
    expect(graph.userCount).toBe(100);
    expect(graph.edges).toHaveLength(136);
    const result = await seed({ gatewayUrl: mesh.gatewayUrl, graph, handlePrefix: "reed98_", concurrency: 32, log: quiet });
    expect(result.users).toHaveLength(graph.userCount);
    expect(result.follows).toBe(2 * graph.edges.length);
    expect(result.mismatches).toEqual([]);
  });

  it("is idempotent: a second run finds the same accounts and changes no count", async () => {
    const small = readEdgeList(REED98_EDGES, 50);
    const again = await seed({ gatewayUrl: mesh.gatewayUrl, graph: small, handlePrefix: "reed98_", concurrency: 16, log: quiet });
    // Users 0-49 already exist with all their friendships in the first load:
    // signing up again logs in, and re-following the friendships among them
    // must leave every count at the first load's degree.
    const full = degrees(graph);
    expect(again.users).toHaveLength(50);
    expect(again.counts.map((c) => [c.followers, c.following])).toEqual(again.counts.map((c) => [full[c.n], full[c.n]]));
  });
});
