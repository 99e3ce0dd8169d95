import { describe, expect, it } from "vitest";
import { ConfigError, EnvReader } from "./config.js";

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
