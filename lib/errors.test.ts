import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { toConnectError } from "./errors.js";

describe("toConnectError", () => {
  it("keeps a handler's own ConnectError", () => {
    const e = new ConnectError("no such user", Code.NotFound);
    expect(toConnectError(e)).toBe(e);
  });

  it.each([
    [{ errno: 1062, code: "ER_DUP_ENTRY" }, Code.AlreadyExists],
    [{ errno: 1213 }, Code.Aborted],
    [{ errno: 1205 }, Code.Aborted],
    [{ errno: 1290 }, Code.Unavailable],
    [{ errno: 1969 }, Code.DeadlineExceeded],
    [{ code: "ECONNREFUSED" }, Code.Unavailable],
    [{ code: "PROTOCOL_CONNECTION_LOST" }, Code.Unavailable],
    [{ code: "PROTOCOL_SEQUENCE_TIMEOUT" }, Code.DeadlineExceeded],
    [{ errno: 1836 }, Code.Unavailable],
    [{ errno: 1927 }, Code.Unavailable],
    [{ fatal: true, message: "Can't add new command when connection is in closed state" }, Code.Unavailable],
    [{ code: "CHIRP_DB_OVERLOADED" }, Code.ResourceExhausted],
    [{ code: "CHIRP_DB_ACQUIRE_TIMEOUT" }, Code.Unavailable],
    [{ code: "CHIRP_DB_UNAVAILABLE" }, Code.Unavailable],
    [new Error("boom"), Code.Internal],
    ["a string", Code.Internal],
  ])("maps %o to %s", (err, code) => {
    expect(toConnectError(err).code).toBe(code);
  });

  it("never echoes the driver message to the client", () => {
    const err = Object.assign(new Error("Duplicate entry 'alice' for key 'PRIMARY' in INSERT INTO users"), {
      errno: 1062,
    });
    const mapped = toConnectError(err);
    expect(mapped.rawMessage).not.toContain("INSERT");
    expect(mapped.cause).toBe(err);
  });

  it("names the shard when one is unavailable, and only then", () => {
    const down = toConnectError({ code: "ECONNREFUSED" }, undefined, { shard: "-40" });
    expect(down.code).toBe(Code.Unavailable);
    expect(down.rawMessage).toBe("shard -40 unavailable");
    expect(toConnectError({ errno: 1062 }, undefined, { shard: "-40" }).rawMessage).toBe("already exists");
    expect(toConnectError(new Error("boom"), undefined, { shard: "-40" }).rawMessage).toBe("internal error");
  });
});
