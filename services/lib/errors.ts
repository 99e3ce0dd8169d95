import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "./logger.js";

/**
 * The one place where driver and library failures become Connect codes.
 * Handlers throw ConnectError for decisions they make themselves (not found,
 * permission denied, ...); everything else passes through here, so nothing
 * leaves a service as Unknown and no SQL or stack trace reaches a client.
 */
export function toConnectError(err: unknown, log?: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  const code = codeOf(err);
  if (code === Code.Internal) {
    log?.error({ err }, "internal error");
    return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
  }
  return new ConnectError(safeMessage(code), code, undefined, undefined, err);
}

// MySQL/MariaDB server error numbers (same in both engines).
const ER_DUP_ENTRY = 1062;
const ER_LOCK_DEADLOCK = 1213;
const ER_LOCK_WAIT_TIMEOUT = 1205;
const ER_OPTION_PREVENTS_STATEMENT = 1290; // --read-only
const ER_QUERY_TIMEOUT = 3024; // MySQL max_execution_time
const ER_STATEMENT_TIMEOUT = 1969; // MariaDB max_statement_time
const ER_CON_COUNT_ERROR = 1040;
const ER_SERVER_SHUTDOWN = 1053;

const NETWORK_ERRNOS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTCONN",
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
]);

function codeOf(err: unknown): Code {
  if (typeof err !== "object" || err === null) return Code.Internal;
  const e = err as { errno?: unknown; code?: unknown; name?: unknown };
  if (e.name === "AbortError") return Code.Canceled;
  if (e.name === "TimeoutError") return Code.DeadlineExceeded;
  switch (e.errno) {
    case ER_DUP_ENTRY:
      return Code.AlreadyExists;
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
      return Code.Aborted;
    case ER_OPTION_PREVENTS_STATEMENT:
    case ER_CON_COUNT_ERROR:
    case ER_SERVER_SHUTDOWN:
      return Code.Unavailable;
    case ER_QUERY_TIMEOUT:
    case ER_STATEMENT_TIMEOUT:
      return Code.DeadlineExceeded;
  }
  if (typeof e.code === "string") {
    if (NETWORK_ERRNOS.has(e.code)) return Code.Unavailable;
    // ioredis and nats.js report a closed connection with these.
    if (e.code === "CONNECTION_CLOSED" || e.code === "CLOSED") return Code.Unavailable;
  }
  return Code.Internal;
}

function safeMessage(code: Code): string {
  switch (code) {
    case Code.AlreadyExists:
      return "already exists";
    case Code.Aborted:
      return "conflicting concurrent update, retry";
    case Code.Unavailable:
      return "storage temporarily unavailable";
    case Code.DeadlineExceeded:
      return "deadline exceeded";
    case Code.Canceled:
      return "canceled";
    default:
      return "internal error";
  }
}
