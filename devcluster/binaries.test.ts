import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MissingBinaryError, findBinary } from "./binaries.js";

describe("findBinary", () => {
  const dir = mkdtempSync(join(tmpdir(), "chirp-bin-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("finds an executable on the given PATH", () => {
    const fake = join(dir, "nats-server");
    writeFileSync(fake, "#!/bin/sh\n");
    chmodSync(fake, 0o755);
    expect(findBinary("nats-server", { path: ["/nonexistent", dir].join(delimiter), extraDirs: [] })).toBe(fake);
  });

  it("skips files that are not executable", () => {
    writeFileSync(join(dir, "redis-server"), "");
    chmodSync(join(dir, "redis-server"), 0o644);
    expect(() => findBinary("redis-server", { path: dir, extraDirs: [] })).toThrow(MissingBinaryError);
  });

  it("names the package to install in one line when missing", () => {
    let caught: unknown;
    try {
      findBinary("mariadbd", { path: join(dir, "empty"), extraDirs: [] });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MissingBinaryError);
    const err = caught as MissingBinaryError;
    expect(err.code).toBe("MISSING_BINARY");
    expect(err.binary).toBe("mariadbd");
    expect(err.message).not.toContain("\n");
    expect(err.message).toBe(
      "mariadbd not found: install it with `apt-get install mariadb-server` (Debian/Ubuntu), " +
        "`brew install mariadb` (macOS), or run `docker compose up` and set MYSQL_URL",
    );
  });

  it("gives the redis and nats hints the same shape", () => {
    expect(() => findBinary("redis-server", { path: "", extraDirs: [] })).toThrow(
      /^redis-server not found: install it with `apt-get install redis-server` \(Debian\/Ubuntu\), `brew install redis` \(macOS\), or run `docker compose up` and set REDIS_URL$/,
    );
    expect(() => findBinary("nats-server", { path: "", extraDirs: [] })).toThrow(/set NATS_URL$/);
  });
});
