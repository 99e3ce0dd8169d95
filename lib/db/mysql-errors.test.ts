import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  describeMysqlError,
  isClientTimeout,
  isConnectionLoss,
  isLockConflict,
  isReadOnlyRefusal,
  isServerReply,
  mysqlConnectCode,
  mysqlErrorCode,
} from "./mysql-errors.js";

// Shaped like mysql2's errors: server replies carry errno and an ER_ code,
// client-side failures a string code, and errors that broke the connection `fatal`.
const deadlock = { errno: 1213, code: "ER_LOCK_DEADLOCK" };
const lockWait = { errno: 1205, code: "ER_LOCK_WAIT_TIMEOUT" };
const readOnly = { errno: 1290, code: "ER_OPTION_PREVENTS_STATEMENT" };
const duplicate = { errno: 1062, code: "ER_DUP_ENTRY" };
const refused = { code: "ECONNREFUSED", fatal: true };
const lost = { code: "PROTOCOL_CONNECTION_LOST", fatal: true };
const closedState = { fatal: true, message: "Can't add new command when connection is in closed state" };
const clientTimeout = { code: "PROTOCOL_SEQUENCE_TIMEOUT", fatal: true };
const accessDenied = { errno: 1045, code: "ER_ACCESS_DENIED_ERROR", fatal: true };

describe("mysql error classifier", () => {
  it("treats deadlocks and lock wait timeouts as conflicts worth one more run", () => {
    expect(isLockConflict(deadlock)).toBe(true);
    expect(isLockConflict(lockWait)).toBe(true);
    for (const other of [readOnly, duplicate, refused, clientTimeout, undefined, null, "1213"]) expect(isLockConflict(other)).toBe(false);
  });

  it("knows a write a read-only server refused (a demoted primary)", () => {
    for (const errno of [1290, 1792, 1836]) expect(isReadOnlyRefusal({ errno })).toBe(true);
    // Busy or shutting down is Unavailable too, but says nothing about a new primary.
    for (const errno of [1040, 1053, 1927, 1213]) expect(isReadOnlyRefusal({ errno })).toBe(false);
  });

  it("counts socket errors and fatal errors as a lost connection, but not mysql2's query timeout", () => {
    for (const code of ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTCONN", "PROTOCOL_CONNECTION_LOST"]) {
      expect(isConnectionLoss({ code })).toBe(true);
    }
    expect(isConnectionLoss(closedState)).toBe(true);
    expect(isConnectionLoss(accessDenied)).toBe(true);
    expect(isConnectionLoss(clientTimeout)).toBe(false);
    expect(isConnectionLoss(deadlock)).toBe(false);
    expect(isConnectionLoss(new Error("boom"))).toBe(false);
    expect(isConnectionLoss(undefined)).toBe(false);
  });

  it("tells mysql2's query timeout from the server's", () => {
    expect(isClientTimeout(clientTimeout)).toBe(true);
    expect(isClientTimeout({ errno: 1969 })).toBe(false);
  });

  it("tells a server's reply over a healthy connection from a broken one", () => {
    expect(isServerReply({ errno: 1146, code: "ER_NO_SUCH_TABLE" })).toBe(true);
    expect(isServerReply(accessDenied)).toBe(false);
    expect(isServerReply(refused)).toBe(false);
    expect(isServerReply({ errno: 0 })).toBe(false);
    expect(isServerReply(null)).toBe(false);
  });

  it.each([
    [duplicate, Code.AlreadyExists],
    [deadlock, Code.Aborted],
    [lockWait, Code.Aborted],
    [readOnly, Code.Unavailable],
    [{ errno: 1792 }, Code.Unavailable],
    [{ errno: 1836 }, Code.Unavailable],
    [{ errno: 1040 }, Code.Unavailable],
    [{ errno: 1053 }, Code.Unavailable],
    [{ errno: 1927 }, Code.Unavailable],
    [{ errno: 3024 }, Code.DeadlineExceeded],
    [{ errno: 1969 }, Code.DeadlineExceeded],
    [refused, Code.Unavailable],
    [lost, Code.Unavailable],
    [clientTimeout, Code.DeadlineExceeded],
    [closedState, Code.Unavailable],
  ])("maps %o to Connect code %s", (err, code) => {
    expect(mysqlConnectCode(err)).toBe(code);
  });

  it("leaves errors it does not know to the caller", () => {
    // A fatal error with a server errno (access denied at connect) is the errno's to decide: none here.
    expect(mysqlConnectCode(accessDenied)).toBeUndefined();
    expect(mysqlConnectCode({ errno: 1146 })).toBeUndefined();
    expect(mysqlConnectCode({ code: "CHIRP_DB_OVERLOADED" })).toBeUndefined();
    expect(mysqlConnectCode(new Error("boom"))).toBeUndefined();
    expect(mysqlConnectCode("a string")).toBeUndefined();
  });

  it("names an error by its code or number, never its message", () => {
    expect(describeMysqlError(duplicate)).toBe("ER_DUP_ENTRY");
    expect(describeMysqlError({ errno: 1146, message: "Table 'chirp_40.users' doesn't exist" })).toBe("errno 1146");
    expect(describeMysqlError(new TypeError("SELECT secret FROM t"))).toBe("TypeError");
    expect(describeMysqlError(undefined)).toBe("unknown");
    expect(mysqlErrorCode(accessDenied)).toBe("ER_ACCESS_DENIED_ERROR");
    expect(mysqlErrorCode({ code: 1 })).toBeUndefined();
  });
});
