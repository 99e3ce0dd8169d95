import { describe, expect, it } from "vitest";
import { formatGtidList, parseGtidList } from "../../lib/shard/gtid.js";
import { trackLost, uncovered, type LostMember } from "./covers.js";

const reading = (readAt: number, pos: string, clients: number) => ({ readAt, binlogPos: parseGtidList(pos), semiSyncClients: clients });

describe("trackLost", () => {
  it("covers a lost replica with the first primary position read after it stopped receiving", () => {
    let lost: Map<string, LostMember> = new Map();
    // t=100: b stops receiving; the primary's state was read at 90, before that.
    lost = trackLost(lost, ["c"], ["b", "c"], reading(90, "0-1-10", 1), 100);
    expect(lost.get("b")).toEqual({ since: 100, cover: undefined });
    // A reading from after it: the cover.
    lost = trackLost(lost, ["c"], ["b", "c"], reading(150, "0-1-12", 1), 160);
    expect(formatGtidList(lost.get("b")!.cover!)).toBe("0-1-12");
    // Later readings do not move it (the first one already contains all b can have).
    lost = trackLost(lost, ["c"], ["b", "c"], reading(300, "0-1-40", 1), 310);
    expect(formatGtidList(lost.get("b")!.cover!)).toBe("0-1-12");
    // Receiving again: no longer lost.
    lost = trackLost(lost, ["b", "c"], ["b", "c"], reading(400, "0-1-50", 2), 410);
    expect(lost.has("b")).toBe(false);
  });

  it("takes no cover from a reading where the primary counts more semi-sync clients than the replicas seen receiving", () => {
    // b is unreachable from the manager but may still be acknowledging: the primary counts 2 clients.
    let lost = trackLost(new Map(), ["c"], ["b", "c"], reading(90, "0-1-10", 2), 100);
    lost = trackLost(lost, ["c"], ["b", "c"], reading(150, "0-1-12", 2), 160);
    expect(lost.get("b")).toEqual({ since: 100, cover: undefined });
  });
});

describe("uncovered", () => {
  it("names the members a candidate may lack acknowledged writes of", () => {
    const covers = new Map([
      ["b", parseGtidList("0-1-12")],
      ["c", undefined],
    ]);
    // c is frozen as a candidate (it is here); b's cover is reached.
    expect(uncovered(covers, ["c"], parseGtidList("0-1-12"))).toEqual([]);
    // b's cover is past what the candidate received.
    expect(uncovered(covers, ["c"], parseGtidList("0-1-11"))).toEqual(["b"]);
    // A member with no cover (it was receiving until the primary died) that is not here.
    expect(uncovered(covers, ["b"], parseGtidList("0-1-99"))).toEqual(["c"]);
  });
});
