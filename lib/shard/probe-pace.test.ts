import { describe, expect, it } from "vitest";
import { ProbePace } from "./probe-pace.js";

/** Runs the busy-pace timer from `from` to `to`, routing traffic at the times in `traffic`; the probe rounds' times. */
function simulate(pace: ProbePace, from: number, to: number, traffic: readonly number[], busyMs: number): number[] {
  const rounds: number[] = [];
  const pending = [...traffic];
  for (let t = from; t <= to; t += busyMs) {
    while (pending.length > 0 && pending[0]! <= t) {
      const at = pending.shift()!;
      if (pace.routed(at)) {
        pace.ticked(at);
        rounds.push(at);
      }
    }
    if (pace.due(t)) {
      pace.ticked(t);
      rounds.push(t);
    }
  }
  return rounds;
}

describe("the router's probe pace", () => {
  it("probes every busy interval while statements flow", () => {
    const pace = new ProbePace(250, 5000, 2000, 0);
    const traffic = Array.from({ length: 40 }, (_, i) => i * 100);
    expect(simulate(pace, 0, 4000, traffic, 250)).toHaveLength(17);
  });

  it("slows to the idle interval once nothing is routed, and probes at once when traffic returns", () => {
    const pace = new ProbePace(250, 5000, 2000, 0);
    const rounds = simulate(pace, 0, 20_500, [20_100], 250);
    // Busy until 2 s of quiet (9 rounds: 0..2000), then every 5 s, then at once on the statement at 20.1 s.
    expect(rounds.filter((t) => t > 2000 && t < 20_100)).toEqual([7000, 12_000, 17_000]);
    expect(rounds).toContain(20_100);
  });

  it("stays at the idle pace when only background work runs (it is not routed as traffic)", () => {
    // A relay polling every 5 s per shard never calls routed(): the pace is the idle one.
    const pace = new ProbePace(250, 5000, 2000, 0);
    const rounds = simulate(pace, 0, 30_000, [], 250);
    expect(rounds.filter((t) => t > 2000)).toEqual([7000, 12_000, 17_000, 22_000, 27_000]);
  });
});
