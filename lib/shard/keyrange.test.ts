import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ShardConfigError, loadShardConfig, parseKeyRange } from "./shard-config.js";
import { ShardMap, compareKeyspaceIds, keyRangeContains } from "./keyrange.js";
import { hashVindex } from "./vindex.js";

const hex = (s: string): Buffer => Buffer.from(s, "hex");

describe("keyRangeContains", () => {
  // Vitess go/vt/key/key_test.go, TestKeyRangeContains.
  it("matches Vitess TestKeyRangeContains", () => {
    const table = [
      { kid: "3000000000000000", start: "3000000000000000", end: "", contained: true },
      { kid: "3000000000000000", start: "", end: "3000000000000000", contained: false },
      { kid: "4000000000000000", start: "3000000000000000", end: "", contained: true },
      { kid: "2000000000000000", start: "3000000000000000", end: "", contained: false },
    ];
    for (const { kid, start, end, contained } of table) {
      expect(keyRangeContains({ start, end }, hex(kid)), `${kid} in ${start}-${end}`).toBe(contained);
      // The complete range holds everything (Vitess: KeyRangeContains(nil, x)).
      expect(keyRangeContains({ start: "", end: "" }, hex(kid))).toBe(true);
    }
  });

  it("treats a short bound as right-padded with zero bytes", () => {
    // The same four cases with one-byte bounds, as shard names spell them.
    expect(keyRangeContains(parseKeyRange("30-"), hex("3000000000000000"))).toBe(true);
    expect(keyRangeContains(parseKeyRange("-30"), hex("3000000000000000"))).toBe(false);
    expect(keyRangeContains(parseKeyRange("30-"), hex("4000000000000000"))).toBe(true);
    expect(keyRangeContains(parseKeyRange("30-"), hex("2000000000000000"))).toBe(false);
    // Just below and at a bound.
    expect(keyRangeContains(parseKeyRange("40-80"), hex("3fffffffffffffff"))).toBe(false);
    expect(keyRangeContains(parseKeyRange("40-80"), hex("4000000000000000"))).toBe(true);
    expect(keyRangeContains(parseKeyRange("40-80"), hex("7fffffffffffffff"))).toBe(true);
    expect(keyRangeContains(parseKeyRange("40-80"), hex("8000000000000000"))).toBe(false);
    // A bound longer than the id: 40 == 4000000000000000000 (9 bytes).
    expect(keyRangeContains({ start: "400000000000000000", end: "" }, hex("4000000000000000"))).toBe(true);
    expect(keyRangeContains({ start: "", end: "400000000000000000" }, hex("4000000000000000"))).toBe(false);
    // binary_md5 ids are 16 bytes; the bounds still apply.
    expect(keyRangeContains(parseKeyRange("c0-"), hex("c0000000000000000000000000000000"))).toBe(true);
    expect(keyRangeContains(parseKeyRange("80-c0"), hex("bfffffffffffffffffffffffffffffff"))).toBe(true);
  });

  it("holds the top of the ring in an open-ended range", () => {
    expect(keyRangeContains(parseKeyRange("c0-"), hex("ffffffffffffffff"))).toBe(true);
    expect(keyRangeContains(parseKeyRange("-40"), hex("0000000000000000"))).toBe(true);
  });
});

describe("compareKeyspaceIds", () => {
  // Vitess key_test.go, TestCompare.
  it("matches Vitess TestCompare", () => {
    expect(compareKeyspaceIds(hex(""), hex(""))).toBe(0);
    expect(compareKeyspaceIds(hex("1122334455667788"), hex("1122334455667788"))).toBe(0);
    expect(compareKeyspaceIds(hex("1122"), hex("1122"))).toBe(0);
    expect(compareKeyspaceIds(hex("11223344"), hex("1122334400000000"))).toBe(0);
    expect(compareKeyspaceIds(hex("1122334400000000"), hex("11223344"))).toBe(0);
    expect(compareKeyspaceIds(hex("01"), hex("02"))).toBe(-1);
    expect(compareKeyspaceIds(hex("02"), hex("01"))).toBe(1);
    expect(compareKeyspaceIds(hex("3000"), hex("20"))).toBe(1);
  });
});

describe("ShardMap", () => {
  const local = loadShardConfig("local");
  const map = new ShardMap(local.shards);

  it("puts user 1 on -40 (ksid 166b40b44aba4bd6)", () => {
    expect(map.shardForUser(1n).name).toBe("-40");
    expect(map.shardForUser("1")).toBe(local.shards.find((s) => s.name === "-40"));
  });

  it("places ids 1..6 by their Vitess hash", () => {
    // 16.., 06.., 4e.., d2.., 70.., f0..
    expect([1n, 2n, 3n, 4n, 5n, 6n].map((id) => map.shardForUser(id).name)).toEqual(["-40", "-40", "40-80", "c0-", "40-80", "c0-"]);
  });

  it("puts every one of 10000 random uint64 ids in exactly one shard, the one shardFor picks", () => {
    const ranges = local.shards.map((s) => ({ name: s.name, range: parseKeyRange(s.name) }));
    for (let i = 0; i < 10_000; i++) {
      const ksid = hashVindex(randomBytes(8).readBigUInt64BE());
      const holders = ranges.filter((r) => keyRangeContains(r.range, ksid)).map((r) => r.name);
      expect(holders).toHaveLength(1);
      expect(map.shardFor(ksid).name).toBe(holders[0]);
    }
  });

  it("places handles by binary_md5 of the lower-cased handle", () => {
    expect(map.shardForHandle("Test")).toBe(map.shardFor(hex("098f6bcd4621d373cade4e832627b4f6")));
    expect(map.shardForHandle("Test")).toBe(map.shardForHandle("TEST"));
  });

  it("finds the shard at every boundary", () => {
    const m = new ShardMap([{ name: "80-c0" }, { name: "-40" }, { name: "c0-" }, { name: "40-80" }]);
    expect(m.shards.map((s) => s.name)).toEqual(["-40", "40-80", "80-c0", "c0-"]);
    const at = (k: string) => m.shardFor(hex(k)).name;
    expect(at("0000000000000000")).toBe("-40");
    expect(at("3fffffffffffffff")).toBe("-40");
    expect(at("4000000000000000")).toBe("40-80");
    expect(at("7fffffffffffffff")).toBe("40-80");
    expect(at("8000000000000000")).toBe("80-c0");
    expect(at("c000000000000000")).toBe("c0-");
    expect(at("ffffffffffffffff")).toBe("c0-");
  });

  it("accepts a single whole-keyspace shard and bounds of different lengths", () => {
    expect(new ShardMap([{ name: "-" }]).shardForUser(1n).name).toBe("-");
    const m = new ShardMap([{ name: "-4000" }, { name: "40-8000" }, { name: "80-" }]);
    expect(m.shardFor(hex("4000000000000000")).name).toBe("40-8000");
  });

  it("rejects shards that do not tile the ring", () => {
    const bad = [
      [{ name: "-40" }, { name: "80-" }], // gap
      [{ name: "-80" }, { name: "40-" }], // overlap
      [{ name: "40-" }], // no start
      [{ name: "-40" }, { name: "40-80" }], // no end
      [{ name: "-" }, { name: "80-" }], // open end then more
      [{ name: "-80" }, { name: "-80" }, { name: "80-" }], // duplicate
      [{ name: "-8" }, { name: "80-" }], // not a keyrange
      [],
    ];
    for (const shards of bad) expect(() => new ShardMap(shards), JSON.stringify(shards)).toThrow(ShardConfigError);
  });
});
