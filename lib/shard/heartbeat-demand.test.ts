import { describe, expect, it } from "vitest";
import { DemandPace, heartbeatDemandSubject } from "./heartbeat-demand.js";

describe("asking for heartbeats", () => {
  it("asks at once, then at most once a second while heartbeats are still needed", () => {
    const pace = new DemandPace(1000);
    // Probe rounds every 250 ms that all need heartbeats, for 3 s.
    const asks = Array.from({ length: 13 }, (_, i) => i * 250).filter((t) => pace.needed(t));
    expect(asks).toEqual([0, 1000, 2000, 3000]);
  });

  it("asks at once again after a quiet spell", () => {
    const pace = new DemandPace(1000);
    expect(pace.needed(0)).toBe(true);
    expect(pace.needed(60_000)).toBe(true);
    expect(pace.needed(60_001)).toBe(false);
  });

  it("names the keyspace outside the event stream's subjects", () => {
    expect(heartbeatDemandSubject("chirp")).toBe("chirp_heartbeat_demand.chirp");
    expect(heartbeatDemandSubject("chirp")).not.toMatch(/^chirp\.[^.]+\.v1\./);
  });
});
