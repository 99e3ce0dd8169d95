import { describe, expect, it } from "vitest";
import { formatGtidList } from "../shard/gtid.js";
import { binlogGap } from "./binlog.js";

describe("binlogGap: is a replay from a GTID position still in a member's binlog", () => {
  it("is whole when the oldest file starts at or before the position and the member has logged past it", () => {
    expect(binlogGap("0-201-50", "", "0-201-90")).toEqual({ missing: [], ahead: [] });
    expect(binlogGap("0-201-50", "0-201-50", "0-201-50")).toEqual({ missing: [], ahead: [] });
    // A failover: the new primary (202) logged the old primary's GTIDs too (log_slave_updates).
    expect(binlogGap("0-201-50", "0-201-40,0-202-10", "0-202-95")).toEqual({ missing: [], ahead: [] });
  });

  it("names what was purged: transactions after the position logged before the oldest file", () => {
    const gap = binlogGap("0-201-50", "0-201-61", "0-201-90");
    expect(formatGtidList(gap.missing)).toBe("0-201-61");
    expect(gap.ahead).toEqual([]);
    // A domain the position does not name at all: every one of its transactions is needed.
    expect(formatGtidList(binlogGap("0-201-50", "0-201-10,1-201-3", "0-201-90,1-201-5").missing)).toBe("1-201-3");
  });

  it("names a position the member never reached (promoted while behind, or another replica set)", () => {
    expect(formatGtidList(binlogGap("0-201-50", "", "0-202-49").ahead)).toBe("0-201-50");
    expect(formatGtidList(binlogGap("0-201-50,1-201-2", "", "0-201-60").ahead)).toBe("1-201-2");
  });
});
