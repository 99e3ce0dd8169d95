import { describe, expect, it } from "vitest";
import { HeartbeatDemand, StatePace } from "./pacing.js";

describe("heartbeats on demand", () => {
  it("writes none until a router asks, then for the window after the last ask", () => {
    const d = new HeartbeatDemand(5000);
    expect(d.wanted(0)).toBe(false);
    // The first ask starts them (beat at once); asks while they run do not.
    expect(d.requested(1000)).toBe(true);
    expect(d.requested(2000)).toBe(false);
    expect(d.wanted(6999)).toBe(true);
    expect(d.wanted(7000)).toBe(false);
    // A later ask starts them again.
    expect(d.requested(60_000)).toBe(true);
    expect(d.wanted(64_999)).toBe(true);
  });

  it("keeps writing while routers ask every second, and stops one window after the asks stop", () => {
    const d = new HeartbeatDemand(5000);
    const asks = [0, 1000, 2000, 3000];
    const beats = Array.from({ length: 40 }, (_, i) => i * 250).filter((t) => {
      while (asks.length > 0 && asks[0]! <= t) d.requested(asks.shift()!);
      return d.wanted(t);
    });
    expect(beats[0]).toBe(0);
    expect(beats.at(-1)).toBe(7750);
    expect(beats).toHaveLength(32);
  });

  it("with a window of 0 writes them all the time", () => {
    const d = new HeartbeatDemand(0);
    expect(d.wanted(0)).toBe(true);
    expect(d.requested(5)).toBe(false);
  });
});

describe("the state-read pace of a replica set", () => {
  it("starts at the active pace and slows once a reading shows nothing changed and nothing wrong", () => {
    const pace = new StatePace(2000, 1000);
    expect([pace.isTroubled, pace.stateMs]).toEqual([true, 1000]);
    // Fine, but the first readings differ from none before them.
    expect(pace.observe({ troubled: false, changed: true })).toBe(false);
    expect([pace.isTroubled, pace.stateMs]).toEqual([false, 1000]);
    expect(pace.observe({ troubled: false, changed: false })).toBe(false);
    expect(pace.stateMs).toBe(2000);
  });

  it("goes back to the active pace while writes change the members' state", () => {
    const pace = new StatePace(2000, 1000);
    pace.observe({ troubled: false, changed: false });
    expect(pace.observe({ troubled: false, changed: true })).toBe(false);
    expect([pace.isTroubled, pace.stateMs]).toEqual([false, 1000]);
  });

  it("asks for every member's state at once when trouble begins, and only then", () => {
    const pace = new StatePace(2000, 1000);
    pace.observe({ troubled: false, changed: false });
    expect(pace.observe({ troubled: true, changed: false })).toBe(true);
    expect([pace.isTroubled, pace.stateMs]).toEqual([true, 1000]);
    expect(pace.observe({ troubled: true, changed: true })).toBe(false);
    expect(pace.observe({ troubled: false, changed: false })).toBe(false);
    expect(pace.stateMs).toBe(2000);
  });
});
