import { Metadata } from "@grpc/grpc-js";

/**
 * Headers that travel on every internal hop. The gateway sets them from the
 * public request; services forward them on the calls they make.
 */
export const REQUEST_ID_HEADER = "x-request-id";

/** The request id a call carries (set by the gateway, passed on by every hop), if any. */
export function requestIdOf(ctx: { readonly requestHeader: Headers }): string | undefined {
  return ctx.requestHeader.get(REQUEST_ID_HEADER) ?? undefined;
}
/**
 * The gateway's caller assertion (lib/auth/assertion.ts, decision 22): the
 * one thing that carries a caller between processes. Services pass it on
 * unchanged on the calls they make on the caller's behalf.
 */
export const ASSERTION_HEADER = "x-chirp-caller";
/**
 * The authenticated caller's user id, as a handler reads it: set by the
 * server side of a call (rpc/callers.ts) from a verified assertion, never
 * taken from the wire (a call that carries one is Unauthenticated).
 */
export const CALLER_ID_HEADER = "x-chirp-caller-id";
/** The session of the caller's token (its `sid`), set with CALLER_ID_HEADER. */
export const SESSION_ID_HEADER = "x-chirp-session-id";
/** The client's User-Agent, which the gateway passes on to the user service (a session's description). */
export const USER_AGENT_HEADER = "x-chirp-user-agent";

const HOP_BY_HOP = new Set([
  "content-type",
  "te",
  "user-agent",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "content-length",
  "connection",
  "host",
]);

export function metadataToHeaders(metadata: Metadata): Headers {
  const headers = new Headers();
  for (const [key, values] of Object.entries(metadata.getMap())) {
    if (key.startsWith(":") || HOP_BY_HOP.has(key)) continue;
    const all = metadata.get(key);
    for (const value of all.length > 0 ? all : [values]) {
      headers.append(key, typeof value === "string" ? value : Buffer.from(value).toString("base64"));
    }
  }
  return headers;
}

/** What `new Headers(init)` accepts (the DOM lib's HeadersInit, which Node's types do not declare globally). */
export type HeadersInit = ConstructorParameters<typeof Headers>[0];

export function headersToMetadata(headers: HeadersInit | undefined): Metadata {
  const metadata = new Metadata();
  if (headers === undefined) return metadata;
  // A Headers is read as it is; records and pairs go through Headers for its name and value rules.
  (headers instanceof Headers ? headers : new Headers(headers)).forEach((value, key) => {
    if (HOP_BY_HOP.has(key) || key.startsWith(":")) return;
    if (key.endsWith("-bin")) metadata.add(key, Buffer.from(value, "base64"));
    else metadata.add(key, value);
  });
  return metadata;
}
