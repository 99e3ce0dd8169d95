// One record per HTTP request the gateway takes: its request id (the
// client's, when well-formed, or a new one; always echoed as x-request-id),
// the client's address (client-address.ts: the connection's, or through a
// trusted proxy the address it forwards for), and, once the answer is out, one access log line at
// info with request_id, method, code, status and duration_ms. RPC handlers
// find the record through the connect context (requestRecordKey) to share its
// request id with the mesh and to note the call's code and caller.
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { Code, createContextKey } from "@connectrpc/connect";
import type { Logger } from "../lib/logger.js";
import { REQUEST_ID_HEADER } from "../lib/rpc/metadata.js";
import { clientAddress, type TrustedProxies } from "./client-address.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface RequestRecord {
  readonly requestId: string;
  /**
   * The client's address: the connection's, or the one a trusted proxy
   * forwards for ("unknown" when the socket has none, e.g. already closed).
   */
  readonly ip: string;
  /** What the access line calls the request: the RPC ("UserService/GetUser") or "GET /path". */
  method: string;
  /** The Connect code of an RPC, once its handler knows it. */
  code: Code | undefined;
  /** The authenticated caller, if any. */
  userId: string | undefined;
}

export const requestRecordKey = createContextKey<RequestRecord | undefined>(undefined, { description: "chirp gateway request" });

// Client-chosen ids are echoed into logs and the mesh: only short, plain tokens.
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** Starts the record of `req`; its access line is written when the response closes. */
export function beginRequest(req: Request, res: Response, path: string, log: Logger, trustedProxies: TrustedProxies): RequestRecord {
  const started = performance.now();
  const given = req.headers[REQUEST_ID_HEADER];
  const requestId = typeof given === "string" && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
  res.setHeader(REQUEST_ID_HEADER, requestId);
  const record: RequestRecord = {
    requestId,
    ip: clientAddress(req.socket?.remoteAddress, req.headers["x-forwarded-for"], trustedProxies),
    method: `${req.method ?? "?"} ${path.length > 200 ? `${path.slice(0, 200)}...` : path}`,
    code: undefined,
    userId: undefined,
  };
  // gRPC answers 200 and puts the outcome in the trailers; note it when the
  // call failed before any handler ran (a body over the size limit, say).
  let grpcStatus: number | undefined;
  const addTrailers = res.addTrailers.bind(res) as (headers: Record<string, string>) => void;
  (res as { addTrailers(headers: Record<string, string>): void }).addTrailers = (headers) => {
    const s = headers["grpc-status"];
    if (s !== undefined) grpcStatus = Number(s);
    addTrailers(headers);
  };
  res.once("close", () => {
    const status = res.headersSent ? res.statusCode : 0;
    const code = record.code ?? (grpcStatus !== undefined ? (grpcStatus as Code) : codeOfStatus(status, res.writableFinished));
    log.info({
      request_id: requestId,
      method: record.method,
      code: code === undefined ? "OK" : Code[code],
      status,
      duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
      ip: record.ip,
      ...(record.userId === undefined ? {} : { user_id: record.userId }),
    });
  });
  return record;
}

/** The Connect code an HTTP status stands for (Connect's own mapping); undefined for success. */
function codeOfStatus(status: number, finished: boolean): Code | undefined {
  if (!finished) return Code.Canceled;
  if (status < 400) return undefined;
  switch (status) {
    case 400:
      return Code.InvalidArgument;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.NotFound;
    case 405:
    case 501:
      return Code.Unimplemented;
    case 408:
    case 504:
      return Code.DeadlineExceeded;
    case 409:
      return Code.Aborted;
    case 411:
    case 416:
      return Code.InvalidArgument;
    case 412:
      return Code.FailedPrecondition;
    case 413:
    case 429:
      return Code.ResourceExhausted;
    case 499:
      return Code.Canceled;
    case 503:
      return Code.Unavailable;
    default:
      return status >= 500 ? Code.Internal : Code.Unknown;
  }
}
