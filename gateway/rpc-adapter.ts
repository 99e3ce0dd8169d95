// The gateway's RPC entry: connect-node's adapter (connectNodeAdapter), with
// one correction to how connect-es answers a request it cannot decode.
//
// connect-es decodes the request before any handler runs, and two of its
// decoding failures carry Code.Internal: a body that is not valid protobuf
// ("parse binary: ..."), and a frame flagged compressed when the request named
// no encoding. Both are the client's fault and must read InvalidArgument: a
// client must not retry them, and an operator's "server fault" alerts must not
// count them. So this adapter notes when a call's implementation starts, and
// when a call ends Internal before its implementation started, it rewrites the
// answer to InvalidArgument in the framing of the protocol it came in on:
//
//   Connect unary        HTTP 500 + error JSON      -> HTTP 400 + error JSON
//   Connect streaming    end-stream message (0x02)  -> the same, code rewritten
//   gRPC-Web             trailer frame (0x80)       -> the same, grpc-status 3
//   gRPC                 HTTP/2 trailers            -> grpc-status 3
//
// An Internal raised once the implementation has started (a backend fault the
// forwarder passes on) is left exactly as it is.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import {
  Code,
  ConnectError,
  createConnectRouter,
  createContextKey,
  createContextValues,
  type ConnectRouter,
  type HandlerContext,
} from "@connectrpc/connect";
import {
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
  type ConnectNodeAdapterOptions,
} from "@connectrpc/connect-node";
import { fastBrotli, fastGzip } from "./compression.js";
import { encodeEnvelope, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  endStreamFlag,
  endStreamFromJson,
  endStreamToJson,
  errorFromJsonBytes,
  errorToJsonBytes,
  parseContentType as parseConnectContentType,
} from "@connectrpc/connect/protocol-connect";
import { findTrailerError, parseContentType as parseGrpcContentType } from "@connectrpc/connect/protocol-grpc";
import { parseContentType as parseGrpcWebContentType, trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

interface CallState {
  /** Set when the implementation is invoked, i.e. once the request decoded. */
  started: boolean;
}

const callStateKey = createContextKey<CallState | undefined>(undefined, { description: "chirp gateway call state" });

const GRPC_INVALID_ARGUMENT = String(Code.InvalidArgument);
const COMPRESSED_FLAG = 0x01;

/**
 * connectNodeAdapter with request-decoding failures answered InvalidArgument
 * (see the top of this file). Takes the same options.
 */
export function rpcAdapter(options: ConnectNodeAdapterOptions): (req: Request, res: Response) => void {
  const router = createConnectRouter({ ...options, acceptCompression: options.acceptCompression ?? [fastGzip, fastBrotli] });
  options.routes(markingStart(router));
  const prefix = options.requestPathPrefix ?? "";
  const paths = new Map(router.handlers.map((h) => [prefix + h.requestPath, h]));

  return (req, res) => {
    const handler = paths.get((req.url ?? "").split("?", 2)[0] ?? "");
    if (handler === undefined) {
      if (options.fallback) options.fallback(req, res);
      else res.writeHead(404).end();
      return;
    }
    const state: CallState = { started: false };
    const values = options.contextValues?.(req) ?? createContextValues();
    values.set(callStateKey, state);
    const uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    const contentType = uReq.header.get("content-type") ?? "";
    handler(uReq)
      .then((uRes) => (state.started ? uRes : blameTheRequest(contentType, uRes)))
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        console.error(`handler for rpc ${handler.method.name} of ${handler.service.typeName} failed`, reason);
      });
  };
}

/** The router as `routes` sees it: every implementation notes that it started. */
function markingStart(router: ConnectRouter): ConnectRouter {
  const wrap =
    (impl: unknown) =>
    (req: unknown, ctx: HandlerContext): unknown => {
      const state = ctx.values.get(callStateKey);
      if (state !== undefined) state.started = true;
      return (impl as (req: unknown, ctx: HandlerContext) => unknown)(req, ctx);
    };
  const marking: ConnectRouter = {
    get handlers() {
      return router.handlers;
    },
    service(service, implementation, opt) {
      const wrapped = Object.fromEntries(Object.entries(implementation).map(([name, impl]) => [name, wrap(impl)]));
      router.service(service, wrapped as typeof implementation, opt);
      return marking;
    },
    rpc(method, impl, opt) {
      router.rpc(method, wrap(impl) as typeof impl, opt);
      return marking;
    },
  };
  return marking;
}

/**
 * The response of a call whose implementation never ran, with an Internal
 * status (necessarily from decoding the request) turned into InvalidArgument.
 */
async function blameTheRequest(contentType: string, uRes: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (parseGrpcContentType(contentType) !== undefined) {
    // The status is written to uRes.trailer once the body ends.
    const trailer = uRes.trailer;
    if (trailer === undefined) return uRes;
    return { ...uRes, body: afterBody(uRes.body, () => rewriteGrpcStatus(trailer)) };
  }
  if (parseGrpcWebContentType(contentType) !== undefined) {
    return { ...uRes, body: mapFrames(uRes.body, trailerFlag, rewriteGrpcWebTrailer) };
  }
  const connect = parseConnectContentType(contentType);
  if (connect?.stream === true) {
    return { ...uRes, body: mapFrames(uRes.body, endStreamFlag, rewriteEndStream) };
  }
  // Connect unary (POST, or GET with the message in the query).
  return uRes.status === codeToHttpStatus(Code.Internal) ? rewriteUnaryError(uRes) : uRes;
}

function isInternal(err: ConnectError | undefined): err is ConnectError {
  return err !== undefined && err.code === Code.Internal;
}

function rewriteGrpcStatus(trailer: Headers): void {
  if (isInternal(findTrailerError(trailer))) trailer.set("grpc-status", GRPC_INVALID_ARGUMENT);
}

function rewriteGrpcWebTrailer(data: Uint8Array): Uint8Array {
  const trailer = trailerParse(data);
  if (!isInternal(findTrailerError(trailer))) return data;
  trailer.set("grpc-status", GRPC_INVALID_ARGUMENT);
  return trailerSerialize(trailer);
}

function rewriteEndStream(data: Uint8Array): Uint8Array {
  const end = endStreamFromJson(data);
  if (!isInternal(end.error)) return data;
  const error = new ConnectError(end.error.rawMessage, Code.InvalidArgument);
  return new TextEncoder().encode(JSON.stringify(endStreamToJson(end.metadata, error, undefined)));
}

/** Connect unary errors are one uncompressed JSON body with their HTTP status (compressed ones are left alone). */
async function rewriteUnaryError(uRes: UniversalServerResponse): Promise<UniversalServerResponse> {
  const header = uRes.header;
  if (uRes.body === undefined || header === undefined || header.has("content-encoding")) return uRes;
  const chunks: Uint8Array[] = [];
  for await (const chunk of uRes.body) chunks.push(chunk);
  const body = new Uint8Array(Buffer.concat(chunks));
  const notJson = new ConnectError("internal error", Code.Internal);
  const err = errorFromJsonBytes(body, undefined, notJson);
  if (!isInternal(err) || err === notJson) return { ...uRes, body: once(body) };
  const out = errorToJsonBytes(new ConnectError(err.rawMessage, Code.InvalidArgument), undefined);
  header.set("content-length", String(out.byteLength));
  return { ...uRes, status: codeToHttpStatus(Code.InvalidArgument), body: once(out) };
}

async function* once(chunk: Uint8Array): AsyncIterable<Uint8Array> {
  yield chunk;
}

/** Calls `onEnd` once `body` is exhausted, before the adapter goes on to the trailers. */
async function* afterBody(body: AsyncIterable<Uint8Array> | undefined, onEnd: () => void): AsyncIterable<Uint8Array> {
  try {
    if (body !== undefined) yield* body;
  } finally {
    onEnd();
  }
}

/**
 * Rewrites the data of every uncompressed frame carrying `flag`. The handlers
 * emit one whole envelope per chunk (transformJoinEnvelopes); anything else
 * passes unchanged.
 */
async function* mapFrames(
  body: AsyncIterable<Uint8Array> | undefined,
  flag: number,
  rewrite: (data: Uint8Array) => Uint8Array,
): AsyncIterable<Uint8Array> {
  if (body === undefined) return;
  for await (const chunk of body) {
    const flags = chunk[0] ?? 0;
    const whole = chunk.byteLength >= 5 && new DataView(chunk.buffer, chunk.byteOffset, 5).getUint32(1) === chunk.byteLength - 5;
    if (whole && (flags & flag) === flag && (flags & COMPRESSED_FLAG) === 0) {
      yield encodeEnvelope(flags, rewrite(chunk.subarray(5)));
    } else {
      yield chunk;
    }
  }
}
