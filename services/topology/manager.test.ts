import { describe, expect, it } from "vitest";
import { formatGtidList, parseGtidList } from "../../lib/shard/gtid.js";
import { trackLost, type LostMember } from "./covers.js";
import { forgetReturned } from "./manager.js";

const reading = (readAt: number, pos: string, clients: number) => ({ readAt, binlogPos: parseGtidList(pos), semiSyncClients: clients });

/** One evaluation of the lost members, as the manager does it: the returned forgotten, then tracked. */
function evaluate(
  lost: Map<string, LostMember>,
  seen: Record<string, number>,
  receiving: string[],
  primary: ReturnType<typeof reading>,
  now: number,
): Map<string, LostMember> {
  return trackLost(forgetReturned(lost, new Map(Object.entries(seen)), primary, receiving.length), receiving, ["b", "c"], primary, now);
}

describe("forgetReturned", () => {
  it("a member that rejoined and died between two evaluations is lost anew: its old cover does not bound what it acknowledged since", () => {
    // t=100: b stops receiving (a failover re-points it; it is rebuilt); covered at 200, while it is not connected.
    let lost = evaluate(new Map(), { c: 90 }, ["c"], reading(90, "0-1-10", 1), 100);
    lost = evaluate(lost, { c: 150 }, ["c"], reading(200, "0-1-20", 1), 210);
    expect(formatGtidList(lost.get("b")!.cover!)).toBe("0-1-20");
    // Its rebuild ends with a reading that shows it replicating (t=300); it acknowledges writes past 0-1-20 and is
    // killed before the next evaluation, which sees it down, its last reading still the one from t=300.
    lost = evaluate(lost, { b: 300, c: 250 }, ["c"], reading(250, "0-1-30", 1), 320);
    expect(lost.get("b")).toEqual({ since: 320, cover: undefined });
    // Covered again by the first fitting primary reading after that.
    lost = evaluate(lost, { b: 300, c: 330 }, ["c"], reading(340, "0-1-45", 1), 350);
    expect(formatGtidList(lost.get("b")!.cover!)).toBe("0-1-45");
  });

  it("drops a cover once the primary counts more semi-sync clients than the members seen receiving", () => {
    let lost = evaluate(new Map(), { c: 90 }, ["c"], reading(90, "0-1-10", 1), 100);
    lost = evaluate(lost, { c: 150 }, ["c"], reading(200, "0-1-20", 1), 210);
    expect(lost.get("b")!.cover).toBeDefined();
    // b reconnected by itself, unseen: the primary counts two clients, one member is seen receiving.
    lost = evaluate(lost, { c: 250 }, ["c"], reading(300, "0-1-30", 2), 310);
    expect(lost.get("b")).toEqual({ since: 310, cover: undefined });
  });

  it("keeps the cover of a member that stays gone", () => {
    let lost = evaluate(new Map(), { c: 90 }, ["c"], reading(90, "0-1-10", 1), 100);
    lost = evaluate(lost, { c: 150 }, ["c"], reading(200, "0-1-20", 1), 210);
    // Its last reading, showing it replicating, predates its loss.
    lost = evaluate(lost, { b: 80, c: 290 }, ["c"], reading(300, "0-1-30", 1), 310);
    expect(lost.get("b")).toEqual({ since: 100, cover: parseGtidList("0-1-20") });
  });
});
