import { setMaxListeners } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { cors, type MethodImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createTokenVerifier } from "../services/lib/auth/token.js";
import type { Logger } from "../services/lib/logger.js";
import type { Metrics } from "../services/lib/metrics.js";
import { createGrpcTransport } from "../services/lib/rpc/grpc-transport.js";
import { REQUEST_ID_HEADER } from "../services/lib/rpc/metadata.js";
import type { GatewayConfig } from "./config.js";
import { forwardingImpl } from "./forward.js";
import { listenHttp1AndH2c, type Listener } from "./listener.js";
import { createMediaEdge } from "./media.js";
import { PUBLIC_API } from "./public-api.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface Gateway {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The only public edge: Connect (JSON or binary) over HTTP/1.1 or HTTP/2,
 * gRPC-Web and gRPC on one port, forwarding the public API to the mesh over
 * grpc-js. Also serves /metrics, /healthz and the /media upload and download
 * routes (media.ts).
 */
export async function startGateway(config: GatewayConfig, log: Logger, metrics: Metrics): Promise<Gateway> {
  const shutdown = new AbortController();
  // connect-node ties every in-flight call to this signal (one listener each,
  // removed when the call ends), so many concurrent calls are many listeners
  // by design, not a leak.
  setMaxListeners(0, shutdown.signal);
  const verifier = createTokenVerifier(config.tokenPublicKeys);
  const transports = PUBLIC_API.map(({ backend }) =>
    createGrpcTransport({ target: config.backends[backend], defaultTimeoutMs: config.defaultTimeoutMs, metrics }),
  );

  const media = createMediaEdge({
    target: config.backends.media,
    verifier,
    log,
    metrics,
    defaultTimeoutMs: config.defaultTimeoutMs,
    uploadTimeoutMs: config.uploadTimeoutMs,
  });

  const rpc = connectNodeAdapter({
    // Responses always carry every field (e.g. nextPageToken: "" on the last page),
    // so browser clients need not know proto3's omit-defaults rule.
    jsonOptions: { alwaysEmitImplicit: true, ignoreUnknownFields: false },
    maxTimeoutMs: 600_000,
    shutdownSignal: shutdown.signal,
    readMaxBytes: 1024 * 1024,
    routes(router) {
      PUBLIC_API.forEach(({ service, methods }, i) => {
        const transport = transports[i]!;
        const impl = forwardingImpl(service, methods, { transport, defaultTimeoutMs: config.defaultTimeoutMs, log, metrics, verifier });
        for (const method of service.methods) {
          const handler = impl[method.localName];
          if (handler !== undefined) router.rpc(method as DescMethod, handler as MethodImpl<DescMethod>);
        }
      });
    },
    fallback(_req, res) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "unimplemented", message: "no such endpoint" }));
    },
  });

  const handler = (req: Request, res: Response): void => {
    if (!applyCors(config.corsOrigins, req, res)) return;
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/metrics") {
      metrics.registry.metrics().then(
        (body) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(body);
        },
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (req.method === "GET" && path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
      return;
    }
    // Uploads and downloads of files: plain HTTP, streamed (media.ts).
    if (media.handle(req, res, path ?? "/")) return;
    rpc(req, res);
  };

  const listener: Listener = await listenHttp1AndH2c(handler, config.host, config.port);
  return {
    port: listener.port,
    async close() {
      shutdown.abort();
      await listener.close();
      for (const t of transports) t.close();
      media.close();
    },
  };
}

/** CORS for browser clients; returns false when the request was a preflight that is now answered. */
function applyCors(origins: readonly string[], req: Request, res: Response): boolean {
  const origin = req.headers.origin;
  if (typeof origin !== "string") return true;
  const allowed = origins.includes("*") || origins.includes(origin);
  if (allowed) {
    res.setHeader("access-control-allow-origin", origins.includes("*") ? "*" : origin);
    res.setHeader("vary", "Origin");
    res.setHeader("access-control-expose-headers", [...cors.exposedHeaders, REQUEST_ID_HEADER].join(", "));
  }
  if (req.method !== "OPTIONS") return true;
  if (allowed) {
    res.setHeader("access-control-allow-methods", cors.allowedMethods.join(", "));
    res.setHeader("access-control-allow-headers", [...cors.allowedHeaders, "Authorization", REQUEST_ID_HEADER].join(", "));
    res.setHeader("access-control-max-age", "7200");
  }
  res.writeHead(allowed ? 204 : 403);
  res.end();
  return false;
}
