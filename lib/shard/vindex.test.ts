import { describe, expect, it } from "vitest";
import { MAX_UINT64, VindexError, binaryMd5Vindex, handleKeyspaceId, hashVindex, hashVindexReverse } from "./vindex.js";

// Vectors from Vitess, go/vt/vtgate/vindexes/. The Go sources spell keyspace
// ids as byte-string literals (e.g. "\x16k@\xb4J\xbaK\xd6"; a non-ASCII rune in
// them stands for its UTF-8 bytes); they are written here in hex.

// hash_test.go, TestHashMap: ids 1..6 (a NULL among them maps to no shard).
const HASH_MAP = [
  [1n, "166b40b44aba4bd6"],
  [2n, "06e7ea22ce92708f"],
  [3n, "4eb190c9a2fa169c"],
  [4n, "d2fd8867d50d2dfe"],
  [5n, "70bb023c810ca87a"],
  [6n, "f098480ac4c4be71"],
] as const;

// hash_auto_test.go, TestHashAutoConvert (vhash/vunhash, both directions).
const HASH_CONVERT = [
  [1n, "166b40b44aba4bd6"],
  [0n, "8ca64de9c1b123a7"],
  [11n, "aefc44491cfe474c"],
  [0x100000000000000n, "0d9f279ba5d87260"],
  [0x800000000000000n, "20b9e767b2fb1456"],
] as const;

describe("hashVindex (Vitess hash)", () => {
  it("maps ids as Vitess TestHashMap does", () => {
    for (const [id, hex] of HASH_MAP) expect(hashVindex(id).toString("hex"), `id ${id}`).toBe(hex);
  });

  it("maps ids as Vitess TestHashAutoConvert does", () => {
    for (const [id, hex] of HASH_CONVERT) expect(hashVindex(id).toString("hex"), `id ${id}`).toBe(hex);
  });

  it("takes decimal strings (BIGINT ids travel as strings)", () => {
    expect(hashVindex("1").toString("hex")).toBe("166b40b44aba4bd6");
    expect(hashVindex("18446744073709551615")).toEqual(hashVindex(MAX_UINT64));
  });

  it("verifies like TestHashVerify: 1 -> its ksid, 2 -> not 1's", () => {
    const ksid1 = Buffer.from("166b40b44aba4bd6", "hex");
    expect(hashVindex(1n).equals(ksid1)).toBe(true);
    expect(hashVindex(2n).equals(ksid1)).toBe(false);
  });

  it("rejects ids outside uint64 and non-decimal strings", () => {
    for (const bad of [-1n, MAX_UINT64 + 1n]) expect(() => hashVindex(bad)).toThrow(VindexError);
    for (const bad of ["", "aa", "-1", "1.5", "0x10", " 1", "1e3", "18446744073709551616", "123456789012345678901"]) {
      expect(() => hashVindex(bad), JSON.stringify(bad)).toThrow(VindexError);
    }
    expect(() => hashVindex(1 as unknown as bigint)).toThrow(VindexError);
  });
});

describe("hashVindexReverse", () => {
  it("reverses like TestHashReverseMap: 166b40b44aba4bd6 -> 1", () => {
    expect(hashVindexReverse(Buffer.from("166b40b44aba4bd6", "hex"))).toBe(1n);
  });

  it("reverses every vector", () => {
    for (const [id, hex] of [...HASH_MAP, ...HASH_CONVERT]) expect(hashVindexReverse(Buffer.from(hex, "hex"))).toBe(id);
  });

  it("rejects a keyspace id that is not 8 bytes, like TestHashReverseMapNeg", () => {
    const ksid = Buffer.from("166b40b44aba4bd6166b40b44aba4bd6", "hex");
    expect(() => hashVindexReverse(ksid)).toThrow(VindexError);
    expect(() => hashVindexReverse(ksid)).toThrow(/invalid keyspace id: 166b40b44aba4bd6166b40b44aba4bd6/);
    expect(() => hashVindexReverse(Buffer.from("aa"))).toThrow(VindexError);
  });

  it("round-trips random ids", () => {
    for (let i = 0; i < 1000; i++) {
      const id = randomUint64();
      expect(hashVindexReverse(hashVindex(id))).toBe(id);
    }
  });
});

// binarymd5_test.go, TestBinaryMD5Map / TestBinaryMD5Verify.
const MD5_MAP = [
  ["Test", "0cbc6611f5540bd0809a388dc95a615b"],
  ["TEST", "033bd94b1168d7e4f0d644c3c95e35bf"],
] as const;

describe("binaryMd5Vindex (Vitess binary_md5)", () => {
  it("maps values as Vitess TestBinaryMD5Map does", () => {
    for (const [value, hex] of MD5_MAP) {
      expect(binaryMd5Vindex(value).toString("hex")).toBe(hex);
      expect(binaryMd5Vindex(Buffer.from(value)).toString("hex")).toBe(hex);
    }
  });

  it("is case-sensitive, like TestBinaryMD5Verify (TEst is not Test)", () => {
    expect(binaryMd5Vindex("TEst").toString("hex")).not.toBe("0cbc6611f5540bd0809a388dc95a615b");
  });
});

describe("handleKeyspaceId", () => {
  it("is binary_md5 of the lower-cased handle", () => {
    expect(handleKeyspaceId("test")).toEqual(binaryMd5Vindex("test"));
    expect(handleKeyspaceId("Test")).toEqual(binaryMd5Vindex("test"));
    expect(handleKeyspaceId("TEST")).toEqual(binaryMd5Vindex("test"));
    expect(handleKeyspaceId("Jack_99")).toEqual(binaryMd5Vindex("jack_99"));
  });
});

function randomUint64(): bigint {
  const b = Buffer.alloc(8);
  for (let i = 0; i < 8; i++) b[i] = Math.floor(Math.random() * 256);
  return b.readBigUInt64BE();
}
