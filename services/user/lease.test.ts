import { describe, expect, it } from "vitest";
import { LeaseExpiredError, startClaimLease } from "./lease.js";

describe("claim lease", () => {
  it("lets the commit through within its window and refuses it after, on the clock it was given", () => {
    let now = 1000;
    const lease = startClaimLease(5000, () => now);
    now = 6000;
    expect(lease.elapsedMs()).toBe(5000);
    expect(() => lease.check()).not.toThrow();
    now = 6000.5;
    expect(() => lease.check()).toThrow(LeaseExpiredError);
    try {
      lease.check();
    } catch (err) {
      expect(err).toMatchObject({ elapsedMs: 5000.5, windowMs: 5000 });
    }
  });

  it("counts from when it was started, on the monotonic clock by default", async () => {
    const lease = startClaimLease(10);
    expect(() => lease.check()).not.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 25));
    expect(lease.elapsedMs()).toBeGreaterThanOrEqual(10);
    expect(() => lease.check()).toThrow(LeaseExpiredError);
  });
});
