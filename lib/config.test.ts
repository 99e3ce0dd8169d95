import { describe, expect, it } from "vitest";
import { ConfigError, EnvReader, recordReads } from "./config.js";

describe("EnvReader", () => {
  it("uses fallbacks and parses values", () => {
    const env = new EnvReader({ P: "8081", L: "debug" });
    expect(env.port("P", 1)).toBe(8081);
    expect(env.port("MISSING", 7)).toBe(7);
    expect(env.oneOf("L", ["info", "debug"], "info")).toBe("debug");
    env.done();
  });

  it("reports every problem at once", () => {
    const env = new EnvReader({ P: "http", N: "-3" });
    env.port("P", 1);
    env.int("N", 1, 0);
    env.string("REQUIRED");
    try {
      env.done();
      expect.fail("done() should throw");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(3);
    }
  });
});

describe("recordReads", () => {
  it("reports what loaders read, with fallbacks and bounds, and direct lookups as raw", () => {
    const { env, reads } = recordReads({ SET: "3" });
    const read = new EnvReader(env);
    read.int("SET", 1, 0, 9);
    read.oneOf("MODE", ["a", "b"], "a");
    read.string("NEEDED");
    void env["DIRECT"];
    expect(reads.filter((r) => r.kind !== "raw" || r.name === "DIRECT")).toEqual([
      { name: "SET", kind: "int", fallback: 1, min: 0, max: 9 },
      { name: "MODE", kind: "oneOf", fallback: "a", allowed: ["a", "b"] },
      { name: "NEEDED", kind: "string", fallback: undefined },
      { name: "DIRECT", kind: "raw" },
    ]);
    expect(env["SET"]).toBe("3");
  });
});
