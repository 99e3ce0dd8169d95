// The gateway's /media routes, plain HTTP for browsers and curl:
//
//   POST /media                 body = the file (Content-Length required),
//                               Authorization: Bearer <token>; 201 + the media JSON
//   GET|HEAD /media/<id>        the file as served (metadata stripped)
//   GET|HEAD /media/<id>/thumb  its thumbnail (images)
//
// Uploads are streamed into the mesh's client-streaming MediaService/Upload
// chunk by chunk under HTTP/2 flow control, never buffered whole: when the
// service refuses (a type it does not store, over the size limit) the answer
// goes out at once and the rest of the body is not read. Downloads come from
// the server-streaming MediaService/ReadMedia with ETag (the content's
// SHA-256), Cache-Control, Last-Modified and single byte ranges (206/416).
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { create, toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { MediaSchema } from "../gen/chirp/media/v1/media_pb.js";
import {
  MediaService,
  MediaVariant,
  ReadMediaRequestSchema,
  UploadRequestSchema,
  type ReadMediaRequest,
  type ReadMediaResponse,
  type ReadMediaResponse_Info,
  type UploadRequest,
  type UploadResponse,
} from "../gen/chirp/media/v1/media_service_pb.js";
import { authenticateBearerClaims } from "../lib/auth/bearer.js";
import type { TokenClaims, TokenVerifier } from "../lib/auth/token.js";
import type { Logger } from "../lib/logger.js";
import type { Metrics } from "../lib/metrics.js";
import { grpcMethodDefinition } from "../lib/rpc/grpc-definition.js";
import { fromServiceError, grpcTarget, meshChannelOptions } from "../lib/rpc/grpc-transport.js";
import { REQUEST_ID_HEADER, headersToMetadata } from "../lib/rpc/metadata.js";
import type { Vouching } from "./vouch.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface MediaEdgeOptions {
  /** The media service: "host:port" or several, comma-separated (round-robin). */
  readonly target: string;
  readonly verifier: TokenVerifier;
  /** Vouches for the uploader to the media service (vouch.ts). */
  readonly vouch: Vouching;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Deadline of a download call. */
  readonly defaultTimeoutMs: number;
  /** Deadline of an upload, body included. */
  readonly uploadTimeoutMs: number;
}

export interface MediaEdge {
  /** Handles `path` if it is a /media route; false otherwise. */
  handle(req: Request, res: Response, path: string): boolean;
  close(): void;
}

/** The most an upload message carries (the proto's chunk limit). */
const UPLOAD_CHUNK = 1024 * 1024;
const CACHE_CONTROL = "public, max-age=31536000, immutable";
/** How long the rest of a refused upload's body is read and dropped before the connection is closed. */
const LINGER_MS = 2000;

const uploadMethod = grpcMethodDefinition(MediaService.method.upload);
const readMethod = grpcMethodDefinition(MediaService.method.readMedia);

export function createMediaEdge(options: MediaEdgeOptions): MediaEdge {
  // The mesh's channel settings: round-robin, and UNAVAILABLE retried on another instance
  // (an upload whose body outgrows grpc-js's retry buffer is not retried).
  const client = new grpc.Client(grpcTarget(options.target), grpc.credentials.createInsecure(), meshChannelOptions());
  const log = options.log.child({ component: "media-edge" });

  const timer = (method: string) => options.metrics.rpcClientDuration.startTimer({ service: "MediaService", method, component: options.metrics.component });

  function upload(req: Request, res: Response): void {
    const requestId = requestIdOf(req, res);
    let caller: TokenClaims | undefined;
    try {
      caller = authenticateBearerClaims(header(req, "authorization"), options.verifier);
    } catch (err) {
      return sendHttpError(req, res, toConnect(err));
    }
    if (caller === undefined) return sendHttpError(req, res, new ConnectError("sign in required", Code.Unauthenticated));
    const length = header(req, "content-length");
    if (length === null || !/^[0-9]{1,15}$/.test(length)) {
      return sendHttpError(req, res, new ConnectError("content-length required", Code.InvalidArgument), 411);
    }
    if (Number(length) === 0) return sendHttpError(req, res, new ConnectError("empty body", Code.InvalidArgument));

    const vouched = new Headers({ [REQUEST_ID_HEADER]: requestId });
    options.vouch(vouched, caller.sub, caller.sid, MediaService.method.upload, requestId, options.uploadTimeoutMs);
    const metadata = headersToMetadata(vouched);
    const done = timer("Upload");
    let finished = false;
    const call = client.makeClientStreamRequest<UploadRequest, UploadResponse>(
      uploadMethod.path,
      uploadMethod.requestSerialize,
      uploadMethod.responseDeserialize,
      metadata,
      { deadline: Date.now() + options.uploadTimeoutMs },
      (err, response) => {
        finished = true;
        if (err || response === undefined) {
          const e = err ? fromServiceError(err) : new ConnectError("empty response", Code.Internal);
          done({ code: Code[e.code] });
          if (e.code === Code.Internal || e.code === Code.Unavailable) log.warn({ err: e, request_id: requestId }, "upload failed");
          return sendHttpError(req, res, e, e.code === Code.ResourceExhausted ? 413 : undefined);
        }
        done({ code: "OK" });
        const media = response.media ?? create(MediaSchema);
        res.writeHead(201, { "content-type": "application/json", location: media.url });
        res.end(JSON.stringify(toJson(MediaSchema, media, { alwaysEmitImplicit: true })));
      },
    );
    // A client that goes away mid-upload ends the call.
    res.once("close", () => {
      if (!finished) call.cancel();
    });

    const writeAll = async (): Promise<void> => {
      const contentType = (header(req, "content-type") ?? "").split(";")[0]!.trim().slice(0, 255) || "application/octet-stream";
      const first = create(UploadRequestSchema, {
        part: { case: "metadata", value: { contentType, fileName: fileNameOf(req), sizeBytes: BigInt(length) } },
      });
      if (!call.write(first)) await drained(call, () => finished);
      // Leaving a plain `for await` over the request destroys it, and with it
      // the socket: a client still writing would be reset before it read the
      // refusal. The refusal's linger (sendHttpError) reads and drops the rest.
      for await (const piece of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        for (let at = 0; at < piece.length && !finished; at += UPLOAD_CHUNK) {
          const chunk = create(UploadRequestSchema, { part: { case: "chunk", value: piece.subarray(at, at + UPLOAD_CHUNK) } });
          if (!call.write(chunk)) await drained(call, () => finished);
        }
        // Refused already: read no more of the body.
        if (finished) return;
      }
      call.end();
    };
    writeAll().catch((err: unknown) => {
      if (finished) return;
      log.debug({ err, request_id: requestId }, "upload body ended early");
      call.cancel();
    });
  }

  function download(req: Request, res: Response, mediaId: string, variant: MediaVariant): void {
    requestIdOf(req, res);
    const head = req.method === "HEAD";
    const ifRange = header(req, "if-range");
    // With If-Range, the validator must be known before a range is chosen: ask for the info first.
    const range = ifRange === null ? parseRange(header(req, "range")) : undefined;
    const request = create(ReadMediaRequestSchema, {
      mediaId: BigInt(mediaId),
      variant,
      infoOnly: head || ifRange !== null,
      ...(range === undefined ? {} : { range }),
    });
    read(request, req, res, (info) => {
      if (ifRange !== null && !head) {
        const etag = `"${info.sha256}"`;
        const wanted = ifRange === etag ? parseRange(header(req, "range")) : undefined;
        const retry = create(ReadMediaRequestSchema, { mediaId: BigInt(mediaId), variant, ...(wanted === undefined ? {} : { range: wanted }) });
        read(retry, req, res, undefined);
        return false;
      }
      return true;
    });
  }

  /**
   * Calls ReadMedia and answers from it. `first` may take over after the info
   * (return false: this call's answer is not used).
   */
  function read(request: ReadMediaRequest, req: Request, res: Response, first: ((info: ReadMediaResponse_Info) => boolean) | undefined): void {
    const done = timer("ReadMedia");
    const call = client.makeServerStreamRequest<ReadMediaRequest, ReadMediaResponse>(
      readMethod.path,
      readMethod.requestSerialize,
      readMethod.responseDeserialize,
      request,
      headersToMetadata(new Headers({ [REQUEST_ID_HEADER]: String(res.getHeader(REQUEST_ID_HEADER) ?? randomUUID()) })),
      { deadline: Date.now() + options.defaultTimeoutMs },
    );
    res.once("close", () => call.cancel());
    const pump = async (): Promise<void> => {
      let started = false;
      for await (const message of call as AsyncIterable<ReadMediaResponse>) {
        if (!started) {
          if (message.part.case !== "info") throw new ConnectError("bad media stream", Code.Internal);
          started = true;
          const info = message.part.value;
          if (first !== undefined && !first(info)) {
            call.cancel();
            return;
          }
          if (!startResponse(req, res, request, info)) {
            call.cancel();
            return;
          }
          continue;
        }
        if (message.part.case !== "chunk") continue;
        const out = res as ServerResponse;
        if (!out.write(message.part.value)) await new Promise<void>((resolve) => out.once("drain", resolve));
      }
      res.end();
    };
    pump().then(
      () => done({ code: "OK" }),
      (err: unknown) => {
        const e = toConnect(err);
        done({ code: Code[e.code] });
        if (res.headersSent) {
          // Mid-body: the only honest signal left is a cut connection.
          if (e.code !== Code.Canceled) log.warn({ err: e }, "media download failed mid-body");
          res.destroy();
          return;
        }
        if (e.code === Code.Canceled && res.writableEnded) return;
        sendHttpError(req, res, e);
      },
    );
  }

  return {
    handle(req, res, path) {
      if (path === "/media") {
        if (req.method === "POST") upload(req, res);
        else methodNotAllowed(req, res, "POST");
        return true;
      }
      const m = /^\/media\/([1-9][0-9]{0,19})(\/thumb)?$/.exec(path);
      if (m === null) {
        if (!path.startsWith("/media/")) return false;
        sendHttpError(req, res, new ConnectError("no such media", Code.NotFound));
        return true;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        methodNotAllowed(req, res, "GET, HEAD");
        return true;
      }
      if (BigInt(m[1]!) > 0xffff_ffff_ffff_ffffn) {
        sendHttpError(req, res, new ConnectError("no such media", Code.NotFound));
        return true;
      }
      download(req, res, m[1]!, m[2] === undefined ? MediaVariant.ORIGINAL : MediaVariant.THUMBNAIL);
      return true;
    },
    close: () => client.close(),
  };
}

/** Writes the status and headers for `info`; false when no body follows (304, 416, HEAD). */
function startResponse(req: Request, res: Response, request: ReadMediaRequest, info: ReadMediaResponse_Info): boolean {
  const etag = `"${info.sha256}"`;
  const size = Number(info.sizeBytes);
  const common: Record<string, string> = {
    etag,
    "cache-control": CACHE_CONTROL,
    "accept-ranges": "bytes",
    "x-content-type-options": "nosniff",
    ...(info.createTime === undefined ? {} : { "last-modified": timestampDate(info.createTime).toUTCString() }),
  };
  if (matchesIfNoneMatch(header(req, "if-none-match"), etag)) {
    res.writeHead(304, common);
    res.end();
    return false;
  }
  if (!info.satisfiable) {
    res.writeHead(416, { ...common, "content-range": `bytes */${size}`, "content-type": "application/json" });
    res.end(JSON.stringify({ code: "out_of_range", message: "range not satisfiable" }));
    return false;
  }
  const partial = request.range !== undefined;
  const start = Number(info.rangeStart);
  const length = request.infoOnly ? (partial ? rangeLength(request, size) : size) : Number(info.rangeLength);
  res.writeHead(partial ? 206 : 200, {
    ...common,
    "content-type": info.contentType,
    "content-length": String(length),
    ...(partial ? { "content-range": `bytes ${start}-${start + length - 1}/${size}` } : {}),
  });
  if (req.method === "HEAD" || length === 0) {
    res.end();
    return false;
  }
  return true;
}

/** The length a HEAD's range would have (the service resolves ranges only when it sends them). */
function rangeLength(request: ReadMediaRequest, size: number): number {
  const spec = request.range?.spec;
  if (spec?.case === "suffixLength") return Math.min(size, Number(spec.value));
  if (spec?.case === "span") {
    const first = Number(spec.value.firstByte);
    const last = spec.value.lastByte === undefined ? size - 1 : Math.min(size - 1, Number(spec.value.lastByte));
    return Math.max(0, last - first + 1);
  }
  return size;
}

/**
 * One byte range of a Range header (RFC 9110 14.2), as the request's range;
 * undefined (serve the whole file) for none, several, or a malformed one.
 */
export function parseRange(value: string | null): ReadMediaRequest["range"] | undefined {
  if (value === null) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (m === null) return undefined;
  const [, first, last] = m;
  if (first === "" && last === "") return undefined;
  if (first === "") {
    const suffix = BigInt(last!);
    return suffix === 0n ? undefined : ({ spec: { case: "suffixLength", value: suffix } } as ReadMediaRequest["range"]);
  }
  const firstByte = BigInt(first!);
  if (last !== "" && BigInt(last!) < firstByte) return undefined;
  return {
    spec: { case: "span", value: { firstByte, ...(last === "" ? {} : { lastByte: BigInt(last!) }) } },
  } as ReadMediaRequest["range"];
}

function matchesIfNoneMatch(value: string | null, etag: string): boolean {
  if (value === null) return false;
  if (value.trim() === "*") return true;
  return value.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

/** Connect's HTTP status for each code. */
const HTTP_STATUS: Partial<Record<Code, number>> = {
  [Code.Canceled]: 499,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Unavailable]: 503,
  [Code.Unauthenticated]: 401,
};

function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/**
 * An error as Connect's JSON error body. When the request body was not read
 * to its end (a refused upload), the rest of it is read and dropped, never
 * stored, for a moment (LINGER_MS) after the answer, then the connection
 * (HTTP/1.1) or stream (HTTP/2) is cut if it has not ended by then.
 *
 * Not `Connection: close`: Node then destroys the socket as soon as the answer
 * is out, and a client still writing gets a reset, which makes its kernel drop
 * the answer it had not read yet (RFC 9112 section 9.6 asks for a lingering
 * close for this reason). A client that finishes sending within the moment
 * keeps its connection.
 */
export function sendHttpError(req: Request, res: Response, err: ConnectError, status?: number): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const unread = !req.readableEnded && req.method !== "GET" && req.method !== "HEAD";
  res.writeHead(status ?? HTTP_STATUS[err.code] ?? 500, { "content-type": "application/json" });
  res.end(JSON.stringify({ code: codeName(err.code), message: err.rawMessage }));
  if (unread) {
    res.once("finish", () => {
      if (req.readableEnded) return;
      const cut = setTimeout(() => (req.httpVersionMajor === 1 ? req.socket.destroy() : req.destroy()), LINGER_MS);
      cut.unref();
      req.once("end", () => clearTimeout(cut));
      // Read and dropped through 'readable', not resume(): an upload loop may
      // still hold the request's async iterator, and resume() called then
      // leaves the stream paused for good once the iterator lets go (no 'end',
      // and the connection cut at the linger while the client reuses it).
      const drop = (): void => {
        while (req.read() !== null);
      };
      req.on("readable", drop);
      drop();
    });
  }
}

function methodNotAllowed(req: Request, res: Response, allow: string): void {
  res.setHeader("allow", allow);
  sendHttpError(req, res, new ConnectError("method not allowed", Code.Unimplemented), 405);
}

function toConnect(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (typeof (err as { code?: unknown }).code === "number") return fromServiceError(err as grpc.ServiceError);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

function header(req: Request, name: string): string | null {
  const value = req.headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

function requestIdOf(req: Request, res: Response): string {
  // The gateway has given the request its id already (access.ts).
  const set = res.getHeader(REQUEST_ID_HEADER);
  if (typeof set === "string") return set;
  const given = header(req, REQUEST_ID_HEADER);
  const id = given !== null && /^[A-Za-z0-9._:-]{1,64}$/.test(given) ? given : randomUUID();
  res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

/** `filename` of a Content-Disposition header, informational only. */
function fileNameOf(req: Request): string {
  const m = /filename="?([^";]{1,255})"?/i.exec(header(req, "content-disposition") ?? "");
  return m?.[1] ?? "";
}

/** Resolves on drain, or at once when the call has finished (a refused upload never drains). */
function drained(call: grpc.ClientWritableStream<UploadRequest>, finished: () => boolean): Promise<void> {
  if (finished()) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      call.off("drain", done);
      call.off("status", done);
      call.off("error", done);
      call.off("close", done);
      resolve();
    };
    call.on("drain", done);
    call.on("status", done);
    call.on("error", done);
    call.on("close", done);
  });
}

