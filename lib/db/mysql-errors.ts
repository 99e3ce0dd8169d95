// What a MySQL/MariaDB driver (mysql2) error means, decided in one place for
// every caller: the shard router (re-run it? wait for a new primary? hand a
// read to the primary?), its health probes, and errors.ts (which Connect code
// a client sees).
//
// Three kinds of field tell errors apart: `errno`, a server error number (the
// same in both engines), on errors the server sent; `code`, a string, also on
// client-side failures (socket errors, mysql2's PROTOCOL_*); and `fatal`, set
// by mysql2 on errors that broke the connection.
import { Code } from "@connectrpc/connect";

// Server error numbers.
const ER_DUP_ENTRY = 1062;
const ER_LOCK_WAIT_TIMEOUT = 1205;
const ER_LOCK_DEADLOCK = 1213;
const ER_OPTION_PREVENTS_STATEMENT = 1290; // --read-only
const ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION = 1792;
const ER_READ_ONLY_MODE = 1836;
const ER_CON_COUNT_ERROR = 1040;
const ER_SERVER_SHUTDOWN = 1053;
const ER_CONNECTION_KILLED = 1927; // MariaDB: KILL CONNECTION, or the server shutting down
const ER_QUERY_TIMEOUT = 3024; // MySQL max_execution_time
const ER_STATEMENT_TIMEOUT = 1969; // MariaDB max_statement_time

const LOCK_CONFLICT_ERRNOS = new Set<unknown>([ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT]);
// The server refused a write because it is read-only: a demoted primary. The
// statement did not run, so in autocommit (or with the transaction rolled
// back) it is as safe to re-run on the new primary as one never sent.
const READ_ONLY_ERRNOS = new Set<unknown>([ER_OPTION_PREVENTS_STATEMENT, ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, ER_READ_ONLY_MODE]);
// The server is up but takes no more work from this connection.
const SERVER_GONE_ERRNOS = new Set<unknown>([ER_CON_COUNT_ERROR, ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED]);
const SERVER_TIMEOUT_ERRNOS = new Set<unknown>([ER_QUERY_TIMEOUT, ER_STATEMENT_TIMEOUT]);

// Socket errors, and mysql2's code for a connection the server closed.
const CONNECTION_LOST_CODES = new Set<unknown>([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTCONN",
  "PROTOCOL_CONNECTION_LOST",
]);
// mysql2's per-query `timeout` option ("Query inactivity timeout").
const CLIENT_TIMEOUT_CODE = "PROTOCOL_SEQUENCE_TIMEOUT";

interface DriverErrorFields {
  readonly errno?: unknown;
  readonly code?: unknown;
  readonly fatal?: unknown;
}

function fieldsOf(err: unknown): DriverErrorFields {
  return typeof err === "object" && err !== null ? (err as DriverErrorFields) : {};
}

/**
 * Deadlock or lock wait timeout (1213/1205): the server rolled the statement
 * (or transaction) back, and running it once more usually succeeds.
 */
export function isLockConflict(err: unknown): boolean {
  return LOCK_CONFLICT_ERRNOS.has(fieldsOf(err).errno);
}

/** A write refused by a read-only server (a demoted primary): it did not run, see READ_ONLY_ERRNOS. */
export function isReadOnlyRefusal(err: unknown): boolean {
  return READ_ONLY_ERRNOS.has(fieldsOf(err).errno);
}

/**
 * The connection is gone: a socket error, or any error mysql2 marks fatal
 * except its own query timeout (that connection is merely mid-statement).
 */
export function isConnectionLoss(err: unknown): boolean {
  const { code, fatal } = fieldsOf(err);
  return CONNECTION_LOST_CODES.has(code) || (fatal === true && code !== CLIENT_TIMEOUT_CODE);
}

/** mysql2 gave up waiting (per-query `timeout`): the connection is mid-statement and the server still runs it. */
export function isClientTimeout(err: unknown): boolean {
  return fieldsOf(err).code === CLIENT_TIMEOUT_CODE;
}

/** An error the server sent back over a healthy connection (as opposed to a broken or timed-out one). */
export function isServerReply(err: unknown): boolean {
  const { errno, fatal } = fieldsOf(err);
  return typeof errno === "number" && errno > 0 && fatal !== true;
}

/**
 * The Connect code a client sees for a driver error, or undefined when this
 * is not a driver error it knows (errors.ts then decides: Internal at last).
 */
export function mysqlConnectCode(err: unknown): Code | undefined {
  const { errno, code, fatal } = fieldsOf(err);
  if (errno === ER_DUP_ENTRY) return Code.AlreadyExists;
  if (LOCK_CONFLICT_ERRNOS.has(errno)) return Code.Aborted;
  if (READ_ONLY_ERRNOS.has(errno) || SERVER_GONE_ERRNOS.has(errno)) return Code.Unavailable;
  if (SERVER_TIMEOUT_ERRNOS.has(errno)) return Code.DeadlineExceeded;
  if (CONNECTION_LOST_CODES.has(code)) return Code.Unavailable;
  if (code === CLIENT_TIMEOUT_CODE) return Code.DeadlineExceeded;
  // mysql2 marks a broken connection's errors fatal ("Can't add new command
  // when connection is in closed state" has no code at all).
  if (fatal === true && typeof errno !== "number") return Code.Unavailable;
  return undefined;
}

/** MySQL error code of a driver error (`ER_ACCESS_DENIED_ERROR`...), if any. */
export function mysqlErrorCode(err: unknown): string | undefined {
  const code = fieldsOf(err).code;
  return typeof code === "string" ? code : undefined;
}

/** A short, safe reason for logs and status: the driver's code, never its message (it may echo SQL). */
export function describeMysqlError(err: unknown): string {
  const { code, errno } = fieldsOf(err);
  if (typeof code === "string") return code;
  if (typeof errno === "number") return `errno ${errno}`;
  return err instanceof Error ? err.name : "unknown";
}
