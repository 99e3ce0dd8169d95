import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "./logger.js";

/**
 * The one place where driver and library failures become Connect codes.
 * Handlers throw ConnectError for decisions they make themselves (not found,
 * permission denied, ...); everything else passes through here, so nothing
 * leaves a service as Unknown and no SQL or stack trace reaches a client.
 */
export function toConnectError(err: unknown, log?: Logger, where: ErrorContext = {}): ConnectError {
  if (err instanceof ConnectError) return err;
  const code = codeOf(err);
  if (code === Code.Internal) {
    log?.error({ err, ...(where.shard === undefined ? {} : { shard: where.shard }) }, "internal error");
    return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
  }
  return new ConnectError(safeMessage(code, where), code, undefined, undefined, err);
}

/** Where a failure happened, when the caller knows and it is safe to tell the client. */
export interface ErrorContext {
  /** Vitess shard name (`-40`): an unavailable shard is named so operators see which one. */
  readonly shard?: string;
}

/**
 * Codes the shard router gives its own failures (lib/shard). They are
 * mapped here like driver errors, so this stays the one mapping point.
 */
export const DB_OVERLOADED = "CHIRP_DB_OVERLOADED"; // member's wait queue is full
export const DB_ACQUIRE_TIMEOUT = "CHIRP_DB_ACQUIRE_TIMEOUT"; // no pooled connection freed in time
export const DB_UNAVAILABLE = "CHIRP_DB_UNAVAILABLE"; // no member to ask (closed router, unknown shard member)

// MySQL/MariaDB server error numbers (same in both engines).
const ER_DUP_ENTRY = 1062;
const ER_LOCK_DEADLOCK = 1213;
const ER_LOCK_WAIT_TIMEOUT = 1205;
const ER_OPTION_PREVENTS_STATEMENT = 1290; // --read-only
const ER_QUERY_TIMEOUT = 3024; // MySQL max_execution_time
const ER_STATEMENT_TIMEOUT = 1969; // MariaDB max_statement_time
const ER_CON_COUNT_ERROR = 1040;
const ER_SERVER_SHUTDOWN = 1053;
const ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION = 1792;
const ER_READ_ONLY_MODE = 1836;
const ER_CONNECTION_KILLED = 1927; // MariaDB: KILL CONNECTION, or the server shutting down

const NETWORK_ERRNOS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTCONN",
  "PROTOCOL_CONNECTION_LOST",
]);

function codeOf(err: unknown): Code {
  if (typeof err !== "object" || err === null) return Code.Internal;
  const e = err as { errno?: unknown; code?: unknown; name?: unknown; fatal?: unknown };
  if (e.name === "AbortError") return Code.Canceled;
  if (e.name === "TimeoutError") return Code.DeadlineExceeded;
  switch (e.errno) {
    case ER_DUP_ENTRY:
      return Code.AlreadyExists;
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
      return Code.Aborted;
    case ER_OPTION_PREVENTS_STATEMENT:
    case ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION:
    case ER_READ_ONLY_MODE:
    case ER_CON_COUNT_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_CONNECTION_KILLED:
      return Code.Unavailable;
    case ER_QUERY_TIMEOUT:
    case ER_STATEMENT_TIMEOUT:
      return Code.DeadlineExceeded;
  }
  if (typeof e.code === "string") {
    if (NETWORK_ERRNOS.has(e.code)) return Code.Unavailable;
    // mysql2's per-query `timeout` option ("Query inactivity timeout").
    if (e.code === "PROTOCOL_SEQUENCE_TIMEOUT") return Code.DeadlineExceeded;
    if (e.code === DB_OVERLOADED) return Code.ResourceExhausted;
    if (e.code === DB_ACQUIRE_TIMEOUT || e.code === DB_UNAVAILABLE) return Code.Unavailable;
    // ioredis and nats.js report a closed connection with these.
    if (e.code === "CONNECTION_CLOSED" || e.code === "CLOSED") return Code.Unavailable;
  }
  // mysql2 marks a broken connection's errors fatal ("Can't add new command
  // when connection is in closed state" has no code at all).
  if (e.fatal === true && typeof e.errno !== "number") return Code.Unavailable;
  return Code.Internal;
}

function safeMessage(code: Code, where: ErrorContext): string {
  const shard = where.shard;
  switch (code) {
    case Code.AlreadyExists:
      return "already exists";
    case Code.Aborted:
      return "conflicting concurrent update, retry";
    case Code.Unavailable:
      return shard === undefined ? "storage temporarily unavailable" : `shard ${shard} unavailable`;
    case Code.ResourceExhausted:
      return shard === undefined ? "storage overloaded, retry later" : `shard ${shard} overloaded, retry later`;
    case Code.DeadlineExceeded:
      return shard === undefined ? "deadline exceeded" : `shard ${shard} query deadline exceeded`;
    case Code.Canceled:
      return "canceled";
    default:
      return "internal error";
  }
}
