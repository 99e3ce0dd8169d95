import { describe, expect, it } from "vitest";
import {
  chooseStartupPrimary,
  compareGtidPos,
  errantGtids,
  formatGtidList,
  gtidPosCurrent,
  gtidPosReaches,
  parseGtidList,
  type StartupMemberView,
} from "./gtid.js";

const g = parseGtidList;

function view(name: string, state: string, pos: string, configuredReplica: boolean, configRole: "primary" | "replica"): StartupMemberView {
  return { name, state: g(state), pos: g(pos), configuredReplica, configRole };
}

describe("gtid lists", () => {
  it("parses and prints MariaDB GTID lists", () => {
    expect(formatGtidList(g(" 0-101-55, 1-7-18446744073709551615"))).toBe("0-101-55,1-7-18446744073709551615");
    expect(g("")).toEqual([]);
    expect(() => g("0-1")).toThrow(/bad GTID/);
  });

  it("finds transactions a member has and the reference never saw", () => {
    // Promoted replica: took 101's history up to 55, then wrote its own.
    const promoted = g("0-101-55,0-102-60");
    expect(errantGtids(g("0-101-55"), promoted)).toEqual([]);
    expect(formatGtidList(errantGtids(g("0-101-58"), promoted))).toBe("0-101-58");
    expect(formatGtidList(errantGtids(g("0-103-1"), promoted))).toBe("0-103-1");
  });

  it("compares positions per domain", () => {
    expect(gtidPosReaches(g("0-102-60"), g("0-101-55"))).toBe(true);
    expect(gtidPosReaches(g("0-101-54"), g("0-101-55"))).toBe(false);
    expect(gtidPosReaches(g(""), g(""))).toBe(true);
    expect(compareGtidPos(g("0-101-56"), g("0-101-55"))).toBe(1);
    expect(compareGtidPos(g("0-101-55"), g("0-101-55"))).toBe(0);
    expect(compareGtidPos(g(""), g("0-101-1"))).toBe(-1);
  });
});

describe("chooseStartupPrimary", () => {
  it("uses the shard config on a fresh cluster", () => {
    const r = chooseStartupPrimary([view("rs0-b", "", "", false, "replica"), view("rs0-a", "", "", false, "primary")]);
    expect(r).toMatchObject({ primary: "rs0-a", replicas: ["rs0-b"], divergent: [] });
  });

  it("keeps the member that was primary when both are level", () => {
    const r = chooseStartupPrimary([view("rs0-a", "0-101-9", "0-101-9", true, "primary"), view("rs0-b", "0-101-9", "0-101-9", false, "replica")]);
    expect(r.primary).toBe("rs0-b");
  });

  it("never points a member at one that is behind it", () => {
    // The old primary's recovery truncated an unacknowledged tail the replica had applied.
    const r = chooseStartupPrimary([view("rs0-a", "0-101-55", "0-101-55", false, "primary"), view("rs0-b", "0-101-56", "0-101-56", true, "replica")]);
    expect(r).toMatchObject({ primary: "rs0-b", replicas: ["rs0-a"] });
  });

  it("after a failover whose old primary never rejoined, picks the promoted member", () => {
    const r = chooseStartupPrimary([view("rs0-a", "0-101-55", "0-101-55", false, "primary"), view("rs0-b", "0-101-55,0-102-57", "0-102-57", false, "replica")]);
    expect(r).toMatchObject({ primary: "rs0-b", replicas: ["rs0-a"], divergent: [] });
  });

  it("keeps a diverged old primary out of replication", () => {
    // rs0-a kept writes that never reached rs0-b (semi-sync had fallen back to async).
    const r = chooseStartupPrimary([view("rs0-a", "0-101-70", "0-101-70", false, "primary"), view("rs0-b", "0-101-55,0-102-60", "0-102-60", false, "replica")]);
    expect(r.primary).toBe("rs0-b");
    expect(r.replicas).toEqual([]);
    expect(r.divergent.map((d) => [d.name, formatGtidList(d.errant)])).toEqual([["rs0-a", "0-101-70"]]);
  });

  it("takes a replica as current only when it has applied the primary's last GTID in every domain, from the same server", () => {
    expect(gtidPosCurrent(g("0-101-55"), g("0-101-55"))).toBe(true);
    // Read after the primary: it may have applied more since.
    expect(gtidPosCurrent(g("0-101-57"), g("0-101-55"))).toBe(true);
    expect(gtidPosCurrent(g("0-101-54"), g("0-101-55"))).toBe(false);
    // A domain the primary has and the replica has not applied.
    expect(gtidPosCurrent(g("0-101-55"), g("0-101-55,1-101-3"))).toBe(false);
    // Domains of the replica's own past are not the primary's business.
    expect(gtidPosCurrent(g("0-101-55,2-9-4"), g("0-101-55"))).toBe(true);
    // Same domain, another server: not provably the same history, even with a higher seq.
    expect(gtidPosCurrent(g("0-102-60"), g("0-101-55"))).toBe(false);
    // A primary that never wrote a binlogged transaction.
    expect(gtidPosCurrent(g(""), g(""))).toBe(true);
  });
});
