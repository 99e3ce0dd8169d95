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
//
// It also writes the JSON of Connect unary answers itself (fast-json.ts), with
// the same bytes connect-es's generic encoder would write: the implementation's
// answer is kept aside, connect-es answers an empty message, and its body is
// replaced with the answer's JSON, compressed as connect-es would (the encoding
// it negotiated from Accept-Encoding, from compressMinBytes up). Headers,
// deadlines, errors and every other protocol stay connect-es's own.
import type { IncomingMessage, ServerResponse } from "node:http";
import { leanUnaryEligible, serveLeanUnary, type LeanRoute, type LeanUnaryOptions } from "./connect-unary.js";
import { create, isMessage, toJsonString, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
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
import { compressionNegotiate, encodeEnvelope, type Compression, type UniversalServerRequest, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { compileJsonEncoder, type JsonEncoder } from "./fast-json.js";
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
  /** A Connect unary JSON call whose answer this adapter writes: the answer, once the implementation gave it. */
  deferred?: { readonly output: DescMessage; answer?: unknown };
}

const callStateKey = createContextKey<CallState | undefined>(undefined, { description: "chirp gateway call state" });

const GRPC_INVALID_ARGUMENT = String(Code.InvalidArgument);
const COMPRESSED_FLAG = 0x01;

/**
 * connectNodeAdapter with request-decoding failures answered InvalidArgument
 * (see the top of this file). Takes the same options.
 */
export function rpcAdapter(options: ConnectNodeAdapterOptions & { /** Connect unary JSON over HTTP/1.1 through connect-unary.ts (default true; false: connect-es for everything, as tests compare). */ readonly leanUnary?: boolean }): (req: Request, res: Response) => void {
  const router = createConnectRouter({ ...options, acceptCompression: options.acceptCompression ?? [fastGzip, fastBrotli] });
  const impls = new Map<DescMethod, LeanRoute["impl"]>();
  options.routes(markingStart(router, (method, impl) => impls.set(method, impl)));
  const prefix = options.requestPathPrefix ?? "";
  const paths = new Map(router.handlers.map((h) => [prefix + h.requestPath, h]));
  const json = fastJson(options, router.handlers.map((h) => h.method));
  // Connect unary JSON over HTTP/1.1 takes the lean path (connect-unary.ts) where the answer's encoder is exact.
  const leanRoutes = new Map<string, LeanRoute>();
  for (const h of router.handlers) {
    const encoder = json.encoders.get(h.method);
    const impl = impls.get(h.method);
    if (options.leanUnary !== false && encoder !== undefined && impl !== undefined) leanRoutes.set(prefix + h.requestPath, { method: h.method, impl, encoder });
  }
  const lean: LeanUnaryOptions = {
    jsonOptions: options.jsonOptions ?? {},
    readMaxBytes: options.readMaxBytes ?? 0xffffffff,
    maxTimeoutMs: options.maxTimeoutMs ?? Number.MAX_SAFE_INTEGER,
    shutdownSignal: options.shutdownSignal,
    compressions: json.compressions,
    compressMinBytes: json.compressMinBytes,
  };

  return (req, res) => {
    const path = (req.url ?? "").split("?", 2)[0] ?? "";
    const handler = paths.get(path);
    if (handler === undefined) {
      if (options.fallback) options.fallback(req, res);
      else res.writeHead(404).end();
      return;
    }
    const leanRoute = leanRoutes.get(path);
    if (leanRoute !== undefined && !("stream" in req) && leanUnaryEligible(req, lean)) {
      const values = options.contextValues?.(req) ?? createContextValues();
      serveLeanUnary(req, res as ServerResponse, leanRoute, values, lean).catch((reason: unknown) => {
        console.error(`handler for rpc ${handler.method.name} of ${handler.service.typeName} failed`, reason);
      });
      return;
    }
    const state: CallState = { started: false };
    const values = options.contextValues?.(req) ?? createContextValues();
    values.set(callStateKey, state);
    const uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    const contentType = uReq.header.get("content-type") ?? "";
    const encoder = json.encoders.get(handler.method);
    if (encoder !== undefined && req.method === "POST" && isConnectUnaryJson(contentType)) state.deferred = { output: handler.method.output };
    handler(uReq)
      .then((uRes) => (state.started ? uRes : blameTheRequest(contentType, uRes)))
      .then((uRes) => (state.deferred?.answer === undefined || encoder === undefined ? uRes : json.answer(uReq, uRes, state.deferred.output, state.deferred.answer, encoder)))
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        console.error(`handler for rpc ${handler.method.name} of ${handler.service.typeName} failed`, reason);
      });
  };
}

/** The router as `routes` sees it: every implementation notes that it started; `onImpl` sees each unwrapped unary one. */
function markingStart(router: ConnectRouter, onImpl: (method: DescMethod, impl: LeanRoute["impl"]) => void): ConnectRouter {
  const wrap =
    (impl: unknown) =>
    (req: unknown, ctx: HandlerContext): unknown => {
      const state = ctx.values.get(callStateKey);
      if (state !== undefined) state.started = true;
      const result = (impl as (req: unknown, ctx: HandlerContext) => unknown)(req, ctx);
      const deferred = state?.deferred;
      if (deferred === undefined) return result;
      // The answer is written by the adapter (fastJson); connect-es encodes an empty one.
      return Promise.resolve(result).then((answer) => {
        deferred.answer = isMessage(answer, deferred.output) ? answer : create(deferred.output, answer as never);
        return create(deferred.output);
      });
    };
  const marking: ConnectRouter = {
    get handlers() {
      return router.handlers;
    },
    service(service, implementation, opt) {
      for (const method of service.methods) {
        const impl = (implementation as Record<string, unknown>)[method.localName];
        if (method.methodKind === "unary" && typeof impl === "function") onImpl(method, impl as LeanRoute["impl"]);
      }
      const wrapped = Object.fromEntries(Object.entries(implementation).map(([name, impl]) => [name, wrap(impl)]));
      router.service(service, wrapped as typeof implementation, opt);
      return marking;
    },
    rpc(method, impl, opt) {
      if (method.methodKind === "unary" && typeof impl === "function") onImpl(method, impl as LeanRoute["impl"]);
      router.rpc(method, wrap(impl) as typeof impl, opt);
      return marking;
    },
  };
  return marking;
}

function isConnectUnaryJson(contentType: string): boolean {
  const type = parseConnectContentType(contentType);
  return type !== undefined && !type.stream && !type.binary;
}

interface FastJson {
  /** The compiled encoder of each unary method's answer (none when the options or the type rule it out). */
  readonly encoders: ReadonlyMap<DescMethod, JsonEncoder>;
  readonly compressions: Compression[];
  readonly compressMinBytes: number;
  /** connect-es's answer to a call whose implementation gave `answer`, with the body of `answer`'s JSON. */
  answer(uReq: UniversalServerRequest, uRes: UniversalServerResponse, output: DescMessage, answer: unknown, encoder: JsonEncoder): Promise<UniversalServerResponse>;
}

/**
 * Hand-compiled JSON (fast-json.ts) for the answers of Connect unary calls,
 * where the options are the ones it writes exactly (the gateway's: every
 * implicit field written, names in camelCase, enums by name).
 */
function fastJson(options: ConnectNodeAdapterOptions, methods: readonly DescMethod[]): FastJson {
  const o = options.jsonOptions ?? {};
  // Interceptors would see the empty stand-in instead of the answer: none, or no fast path.
  const exact = (options.interceptors ?? []).length === 0 && o.alwaysEmitImplicit === true && o.enumAsInteger !== true && o.useProtoFieldName !== true && o.registry === undefined && ((o as { prettySpaces?: number }).prettySpaces ?? 0) === 0;
  const encoders = new Map<DescMethod, JsonEncoder>();
  if (exact) {
    for (const method of methods) {
      if (method.methodKind !== "unary") continue;
      const encoder = compileJsonEncoder(method.output);
      if (encoder !== undefined) encoders.set(method, encoder);
    }
  }
  const compressions: Compression[] = options.acceptCompression ?? [fastGzip, fastBrotli];
  const compressMinBytes = options.compressMinBytes ?? CONNECT_COMPRESS_MIN_BYTES;
  return {
    encoders,
    compressions,
    compressMinBytes,
    async answer(uReq, uRes, output, answer, encoder) {
      // connect-es answered the empty message with 200; anything else passes unchanged.
      if (uRes.status !== 200 || uRes.header === undefined) return uRes;
      let text: string;
      try {
        text = encoder(answer);
      } catch {
        // What the compiled encoder refuses, the generic one decides (it may refuse too: Internal, as before).
        try {
          text = toJsonString(output, answer as never, o);
        } catch (err) {
          const body = errorToJsonBytes(ConnectError.from(err, Code.Internal), undefined);
          const header = new Headers(uRes.header);
          header.set("content-length", String(body.byteLength));
          return { status: codeToHttpStatus(Code.Internal), header, body: once(body) };
        }
      }
      let body: Uint8Array = Buffer.from(text, "utf8");
      const header = uRes.header;
      // Whatever connect-es decided for the empty stand-in, the answer's body decides here.
      header.delete("content-encoding");
      const compression = compressionNegotiate(compressions, uReq.header.get("content-encoding"), uReq.header.get("accept-encoding"), "Accept-Encoding");
      if (compression.response !== null && body.byteLength >= compressMinBytes) {
        body = await compression.response.compress(body);
        header.set("content-encoding", compression.response.name);
      }
      header.set("content-length", String(body.byteLength));
      return { ...uRes, header, body: once(body) };
    },
  };
}

/** connect-es's default compressMinBytes (protocol/limit-io.js). */
const CONNECT_COMPRESS_MIN_BYTES = 1024;

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
