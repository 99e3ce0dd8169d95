import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { CALLER_ID_HEADER, SESSION_ID_HEADER } from "../rpc/metadata.js";

/**
 * The authenticated caller of an RPC, as the gateway vouched for it
 * (`x-chirp-caller-id`). The header is set only by the server side of the
 * call (rpc/callers.ts), from an assertion it verified; a call that brings
 * one of its own is refused there, before any handler runs (decision 22).
 */
export function callerOf(ctx: HandlerContext): bigint | undefined {
  return idHeader(ctx, CALLER_ID_HEADER);
}

/** The session of the caller's token (with callerOf), or Unauthenticated. */
export function requireSession(ctx: HandlerContext): bigint {
  const id = idHeader(ctx, SESSION_ID_HEADER);
  if (id === undefined || callerOf(ctx) === undefined) throw new ConnectError("sign in required", Code.Unauthenticated);
  return id;
}

function idHeader(ctx: HandlerContext, name: string): bigint | undefined {
  const value = ctx.requestHeader.get(name);
  if (value === null || !/^[1-9][0-9]{0,19}$/.test(value)) return undefined;
  const id = BigInt(value);
  return id <= 0xffff_ffff_ffff_ffffn ? id : undefined;
}

/** The caller, or Unauthenticated for an RPC that acts as a user. */
export function requireCaller(ctx: HandlerContext): bigint {
  const id = callerOf(ctx);
  if (id === undefined) throw new ConnectError("sign in required", Code.Unauthenticated);
  return id;
}
