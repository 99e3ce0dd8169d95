import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REED98_EDGES, degrees, readEdgeList } from "./dataset.js";

describe("edge lists", () => {
  it("reads socfb-Reed98 as shipped: 962 users, 18,812 friendships", () => {
    const graph = readEdgeList(REED98_EDGES);
    expect(graph.userCount).toBe(962);
    expect(graph.edges).toHaveLength(18_812);
    const d = degrees(graph);
    expect(d.reduce((a, b) => a + b, 0)).toBe(2 * 18_812);
    expect(d.every((x) => x > 0)).toBe(true);
  });

  it("drops self-loops, repeats and users past the limit, and rejects junk", () => {
    const dir = mkdtempSync(join(tmpdir(), "edges-"));
    const file = join(dir, "g.edges");
    writeFileSync(file, "% comment\n0 1\n1 0\n2 2\n1 2\n3 0\n");
    const graph = readEdgeList(file, 3);
    expect(graph.edges).toEqual([
      [0, 1],
      [1, 2],
    ]);
    expect(graph.userCount).toBe(3);
    writeFileSync(file, "0 x\n");
    expect(() => readEdgeList(file)).toThrow(/expected "a b"/);
  });
});
