import { describe, expect, it } from "vitest";
import { REED98_EDGES, readEdgeList } from "./dataset.js";
import { PLAN_GAP, planHistory } from "./seed-history.js";

describe("planHistory", () => {
  const graph = readEdgeList(REED98_EDGES, 200);
  const plan = planHistory(graph, 2000, "reed98_");

  it("plans the same history for the same graph and size", () => {
    expect(planHistory(graph, 2000, "reed98_")).toEqual(plan);
    expect(planHistory(graph, 1999, "reed98_")).not.toEqual(plan);
  });

  it("replies to and quotes only tweets at least the gap earlier, and never both at once", () => {
    const refs = plan.flatMap((t, i) => [t.replyTo, t.quote].flatMap((k) => (k === undefined ? [] : [i - k])));
    expect(refs.length).toBeGreaterThan(300);
    expect(Math.min(...refs)).toBeGreaterThanOrEqual(PLAN_GAP);
    expect(plan.filter((t) => t.replyTo !== undefined && t.quote !== undefined)).toEqual([]);
    expect(plan.filter((t) => t.quote !== undefined).length).toBeGreaterThan(50);
  });

  it("gives every author distinct texts of at most 280 characters, with hashtags, mentions of friends, URLs, photos, and likes and reposts by friends", () => {
    const keys = plan.map((t) => `${t.author}\n${t.text}`);
    expect(new Set(keys).size).toBe(plan.length);
    expect(Math.max(...plan.map((t) => t.text.length))).toBeLessThanOrEqual(280);
    expect(plan.filter((t) => t.text.includes("#")).length).toBeGreaterThan(500);
    expect(plan.filter((t) => t.text.includes("https://")).length).toBeGreaterThan(100);
    expect(plan.filter((t) => t.photo).length).toBeGreaterThan(10);
    const friends = new Set(graph.edges.flatMap(([a, b]) => [`${a}-${b}`, `${b}-${a}`]));
    expect(plan.filter((t) => t.reposters.length > 0).length).toBeGreaterThan(100);
    for (const t of plan) {
      for (const n of [...t.likers, ...t.reposters]) expect(friends.has(`${t.author}-${n}`)).toBe(true);
      const mention = /@reed98_(\d+)/.exec(t.text);
      if (mention !== null) expect(friends.has(`${t.author}-${mention[1]}`)).toBe(true);
    }
  });

  it("places the tweets along the span in plan order, so every reply and quote comes after its tweet", () => {
    const at = plan.map((t) => t.at);
    expect(Math.min(...at)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...at)).toBeLessThan(1);
    for (let i = 1; i < at.length; i++) expect(at[i]!).toBeGreaterThan(at[i - 1]!);
    // Spread over the whole span: each tenth holds about a tenth of the tweets.
    for (let d = 0; d < 10; d++) expect(at.filter((x) => Math.floor(x * 10) === d).length).toBe(200);
  });
});
