import { describe, expect, it } from "vitest";
import { formatGtidList, parseGtidList } from "../../lib/shard/gtid.js";
import { historyAt } from "./rebuild.js";

describe("historyAt", () => {
  it("keeps the former primaries' last GTIDs from before the snapshot, and ends each domain with the snapshot's position", () => {
    const state = parseGtidList("0-101-6454,0-102-7000,0-103-9000,1-101-40");
    expect(formatGtidList(historyAt(parseGtidList("0-103-8800,1-101-40"), state))).toBe("0-101-6454,0-102-7000,0-103-8800,1-101-40");
  });

  it("leaves out what a server wrote after the snapshot", () => {
    // 0-102-9100 is a later write of a former primary's id (not possible under strict mode after 0-103-9000, but never taken).
    const state = parseGtidList("0-102-9100,0-103-9000");
    expect(formatGtidList(historyAt(parseGtidList("0-103-8800"), state))).toBe("0-103-8800");
  });
});
