// A configuration error a service finds only once its infrastructure is
// connected (the timeline's list sizes are checked when its context is made)
// ends the process at once with its message: the launcher sees it exit, and
// does not wait for a readiness that never comes.
import { describe, expect, it } from "vitest";
import { startSystem } from "../support/system.js";

describe("a service configuration error at start", () => {
  it("ends the process with its message instead of leaving it hanging", async () => {
    const started = startSystem({ env: { CHIRP_TIMELINE_MAX_ENTRIES: "40", LOG_LEVEL: process.env["DEBUG_START"] ?? "warn" } });
    await expect(started).rejects.toThrow(/exited before it was ready/);
  });
});
