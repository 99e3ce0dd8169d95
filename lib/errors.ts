import { Code, ConnectError } from "@connectrpc/connect";
import { mysqlConnectCode } from "./db/mysql-errors.js";
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
export const DB_WRITE_UNCONFIRMED = "CHIRP_DB_WRITE_UNCONFIRMED"; // a commit not confirmed within the commit bound (no replica acked): outcome unknown

function codeOf(err: unknown): Code {
  if (typeof err !== "object" || err === null) return Code.Internal;
  const e = err as { code?: unknown; name?: unknown };
  if (e.name === "AbortError") return Code.Canceled;
  if (e.name === "TimeoutError") return Code.DeadlineExceeded;
  if (e.code === DB_OVERLOADED) return Code.ResourceExhausted;
  if (e.code === DB_ACQUIRE_TIMEOUT || e.code === DB_UNAVAILABLE || e.code === DB_WRITE_UNCONFIRMED) return Code.Unavailable;
  // ioredis and nats.js report a closed connection with these.
  if (e.code === "CONNECTION_CLOSED" || e.code === "CLOSED") return Code.Unavailable;
  // Driver errors: lib/db/mysql-errors.ts decides what each means.
  return mysqlConnectCode(err) ?? Code.Internal;
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
