import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** An undirected social graph: users numbered 0..userCount-1 and their friendships. */
export interface SocialGraph {
  readonly name: string;
  readonly userCount: number;
  readonly edges: ReadonlyArray<readonly [number, number]>;
}

export const REED98_EDGES = fileURLToPath(new URL("../../data/socfb-Reed98/socfb-Reed98.edges", import.meta.url));

/**
 * Reads an edge list (`a b` per line, 0-based, `%` or `#` comments allowed),
 * dropping self-loops and repeated friendships. `limitUsers` keeps only users
 * below that number and the edges among them (small seeds for tests).
 */
export function readEdgeList(path: string, limitUsers = Number.POSITIVE_INFINITY): SocialGraph {
  const seen = new Set<string>();
  const edges: Array<[number, number]> = [];
  let maxUser = -1;
  const lines = readFileSync(path, "utf8").split("\n");
  lines.forEach((line, i) => {
    const text = line.trim();
    if (text === "" || text.startsWith("%") || text.startsWith("#")) return;
    const parts = text.split(/\s+/);
    const a = Number(parts[0]);
    const b = Number(parts[1]);
    if (parts.length < 2 || !Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0) {
      throw new Error(`${path}:${i + 1}: expected "a b" with user numbers, got ${JSON.stringify(text)}`);
    }
    if (a >= limitUsers || b >= limitUsers || a === b) return;
    const key = a < b ? `${a} ${b}` : `${b} ${a}`;
    if (seen.has(key)) return;
    seen.add(key);
    edges.push([a, b]);
    maxUser = Math.max(maxUser, a, b);
  });
  const userCount = Number.isFinite(limitUsers) ? Math.min(limitUsers, maxUser + 1) : maxUser + 1;
  return { name: path.split("/").pop()?.replace(/\.edges$/, "") ?? path, userCount, edges };
}

/** Friend counts: with every friendship followed both ways, each user's follower and following count. */
export function degrees(graph: SocialGraph): number[] {
  const degree = new Array<number>(graph.userCount).fill(0);
  for (const [a, b] of graph.edges) {
    degree[a]!++;
    degree[b]!++;
  }
  return degree;
}
