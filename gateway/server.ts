import { setMaxListeners } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, cors, createContextValues, type MethodImpl, type Transport } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { Counter, Gauge } from "prom-client";
import { createAssertionSigner, type AssertionVerifier, type InProcessSigning } from "../lib/auth/assertion.js";
import { authenticateBearer, authenticateBearerClaims } from "../lib/auth/bearer.js";
import { followEndedSessions, refusingEndedSessions, type EndedSessions } from "../lib/auth/ended-sessions.js";
import { sessionActivityReporter } from "../lib/auth/session-activity.js";
import { createTokenVerifier } from "../lib/auth/token.js";
import type { EventBus } from "../lib/events/bus.js";
import type { Logger } from "../lib/logger.js";
import type { Metrics } from "../lib/metrics.js";
import { metricsText } from "../lib/worker-metrics.js";
import { createRedis } from "../lib/redis.js";
import { createGrpcTransport } from "../lib/rpc/grpc-transport.js";
import type { InProcessServices } from "../lib/rpc/in-process.js";
import { REQUEST_ID_HEADER } from "../lib/rpc/metadata.js";
import { beginRequest, requestRecordKey, type RequestRecord } from "./access.js";
import { exportAccount } from "./account-export.js";
import { createAccountLimiter, type AccountLimiter } from "./account-limit.js";
import type { GatewayConfig } from "./config.js";
import { forwardingImpl, rateLimited } from "./forward.js";
import { listenHttp1AndH2c, type Listener } from "./listener.js";
import { createMediaEdge, sendHttpError } from "./media.js";
import { PUBLIC_API } from "./public-api.js";
import { createRateLimiter, formatBucket, RATE_CLASSES, type RateLimiter } from "./rate-limit.js";
import { rpcAdapter } from "./rpc-adapter.js";
import { createVouching } from "./vouch.js";
import { buildWebApp } from "./web-app.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface Gateway {
  readonly port: number;
  /**
   * Stops taking connections, ends open event streams, lets calls in flight
   * finish for up to the shutdown grace period, then cuts what is left.
   */
  close(): Promise<void>;
}

/** When the gateway runs in the same process as services (`--target all`). */
export interface GatewayOptions {
  /** The services hosted here: their calls go in-process instead of over gRPC. */
  readonly local?: InProcessServices;
  /** Where /media uploads and downloads stream to over gRPC, instead of CHIRP_MEDIA_ADDR. */
  readonly mediaTarget?: string;
  /** This process's assertion verifier (the single process): assertions the gateway makes are known to it without a MAC, and MACs for the services in `local` are one by the process's own key. */
  readonly assertionVerifier?: AssertionVerifier;
  /** NATS: ended sessions are refused (lib/auth/ended-sessions.ts) and sessions' activity reported. Without it, a LogOut cannot take effect here. */
  readonly bus?: EventBus;
}

/**
 * The services whose MACs the gateway's assertions make with the process's
 * own key: those it calls in-process. The public RPCs reach every hosted
 * service in-process (and services pass the assertion on in-process too);
 * the media edge's uploads and downloads stream over gRPC (`mediaTarget`),
 * which behind a port shared by several workers (`--processes`) may reach
 * another process, so its assertions carry media's own MAC.
 */
function inProcessSigning(options: GatewayOptions, calls: "rpc" | "media-edge"): InProcessSigning | undefined {
  const { local, assertionVerifier: verifier } = options;
  if (verifier === undefined) return undefined;
  const services = PUBLIC_API.filter((p) => local?.hosts(p.service) === true && !(calls === "media-edge" && p.backend === "media")).map((p) => p.backend);
  return { verifier, services };
}

/** How long the gateway waits at start for the ended sessions before serving without them (it keeps following). */
const ENDED_SESSIONS_WAIT_MS = 3000;

/** The largest RPC request body accepted (Connect, gRPC-Web, gRPC); /media has its own limits. */
export const MAX_RPC_REQUEST_BYTES = 1024 * 1024;

/**
 * The only public edge: Connect (JSON or binary) over HTTP/1.1 or HTTP/2,
 * gRPC-Web and gRPC on one port, forwarding the public API to the mesh over
 * grpc-js. Also serves the web app (`/`, web-app.ts), /healthz, the /media
 * upload and download routes (media.ts), and /metrics when
 * CHIRP_GATEWAY_PUBLIC_METRICS asks for it.
 */
export async function startGateway(config: GatewayConfig, log: Logger, metrics: Metrics, options: GatewayOptions = {}): Promise<Gateway> {
  // Connect-node ties every call to this signal (one listener each, removed
  // when the call ends), so many concurrent calls are many listeners by
  // design, not a leak. Aborted only once the drain is over.
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal);
  // Aborted first on shutdown: live streams end so that clients reconnect elsewhere.
  const streamsClosing = new AbortController();
  setMaxListeners(0, streamsClosing.signal);
  let closing = false;

  const web = await buildWebApp();
  log.info({ build_ms: web.buildMs, bytes: web.bytes }, "web app built");
  let ended: EndedSessions | undefined;
  let verifier = createTokenVerifier(config.tokenPublicKeys);
  if (options.bus === undefined) log.warn("no NATS_URL: tokens of ended sessions (LogOut, RevokeSession) are still accepted here");
  else {
    const current = new Gauge({
      name: "chirp_gateway_ended_sessions_current",
      help: "1 while this gateway has read the ended sessions through and follows them; 0 while it may accept a token whose session ended.",
      registers: [metrics.registry],
    });
    ended = followEndedSessions({ bus: options.bus, log: log.child({ component: "ended-sessions" }), onState: (on) => current.set(on ? 1 : 0) });
    if (!(await ended.ready(ENDED_SESSIONS_WAIT_MS))) log.warn({ waited_ms: ENDED_SESSIONS_WAIT_MS }, "serving before the ended sessions were read (NATS unreachable?); following them in the background");
    verifier = refusingEndedSessions(verifier, ended);
  }
  const onSession = options.bus === undefined ? undefined : sessionActivityReporter(options.bus);
  const vouch = createVouching(createAssertionSigner(config.meshSecrets[0]!, inProcessSigning(options, "rpc")), config.assertionTtlMs);
  const vouchMedia = createVouching(createAssertionSigner(config.meshSecrets[0]!, inProcessSigning(options, "media-edge")), config.assertionTtlMs);
  const remote: Array<{ close(): void }> = [];
  const transports = PUBLIC_API.map(({ backend, service }) => {
    if (options.local?.hosts(service) === true) return options.local.transport();
    const transport = createGrpcTransport({ target: config.backends[backend], defaultTimeoutMs: config.defaultTimeoutMs, metrics });
    remote.push(transport);
    return transport;
  });

  let redis: Redis | undefined;
  let limiter: RateLimiter | undefined;
  let accountLimiter: AccountLimiter | undefined;
  if (config.redis.url === undefined) {
    log.warn("no REDIS_URL: rate limits are off");
  } else {
    redis = createRedis({ ...config.redis, url: config.redis.url }, log.child({ component: "rate-limit" }), "chirp-gateway");
    const decisions = new Counter({
      name: "chirp_gateway_rate_limit_decisions_total",
      help: "Rate limit decisions by request class and outcome (allowed, limited, exempt, failed_open).",
      labelNames: ["class", "outcome"],
      registers: [metrics.registry],
    });
    limiter = createRateLimiter({
      redis,
      limits: config.rateLimits,
      exemptIps: config.rateLimitExemptIps,
      log: log.child({ component: "rate-limit" }),
      onDecision: (cls, outcome) => decisions.inc({ class: cls, outcome }),
    });
    accountLimiter = createAccountLimiter({
      redis,
      limits: config.accountLimits,
      exemptIps: config.rateLimitExemptIps,
      log: log.child({ component: "rate-limit" }),
      onDecision: (outcome) => decisions.inc({ class: "auth_account", outcome }),
    });
    log.info(
      {
        limits: Object.fromEntries(
          RATE_CLASSES.map((c) => [c, { user: formatBucket(config.rateLimits[c].user), ip: formatBucket(config.rateLimits[c].ip) }]),
        ),
        account: { failures: formatBucket(config.accountLimits.failures), known_days: config.accountLimits.knownDays },
        exempt: config.rateLimitExemptIps,
        trusted_proxies: config.trustedProxies.any,
      },
      "rate limits on",
    );
  }

  const media = createMediaEdge({
    target: options.mediaTarget ?? config.backends.media,
    verifier,
    vouch: vouchMedia,
    log,
    metrics,
    defaultTimeoutMs: config.defaultTimeoutMs,
    uploadTimeoutMs: config.uploadTimeoutMs,
  });

  const records = new WeakMap<Request, RequestRecord>();
  // connect-node's adapter, except that a request body connect-es cannot
  // decode is answered InvalidArgument rather than Internal (rpc-adapter.ts).
  const rpc = rpcAdapter({
    // Responses always carry every field (e.g. nextPageToken: "" on the last page),
    // so browser clients need not know proto3's omit-defaults rule.
    jsonOptions: { alwaysEmitImplicit: true, ignoreUnknownFields: false },
    maxTimeoutMs: 600_000,
    shutdownSignal: shutdown.signal,
    readMaxBytes: MAX_RPC_REQUEST_BYTES,
    contextValues: (req) => createContextValues().set(requestRecordKey, records.get(req)),
    routes(router) {
      PUBLIC_API.forEach(({ service, methods }, i) => {
        const transport = transports[i]!;
        const impl = forwardingImpl(service, methods, {
          transport,
          defaultTimeoutMs: config.defaultTimeoutMs,
          log,
          metrics,
          verifier,
          vouch,
          limiter,
          accountLimiter,
          ...(onSession === undefined ? {} : { onSession }),
          streamsClosing: streamsClosing.signal,
        });
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

  /** /media through the rate limits: uploads by user and address, downloads by address. */
  const mediaRoute = (req: Request, res: Response, path: string, record: RequestRecord): void => {
    if (limiter === undefined || (req.method !== "POST" && req.method !== "GET" && req.method !== "HEAD")) {
      if (!media.handle(req, res, path)) rpc(req, res);
      return;
    }
    const upload = req.method === "POST";
    let userId: string | undefined;
    if (upload) {
      try {
        userId = authenticateBearer(headerOf(req, "authorization"), verifier);
      } catch {
        // media.ts answers the bad token.
      }
    }
    limiter.admit(upload ? "upload" : "read", { userId, ip: record.ip }, record.requestId).then(
      (decision) => {
        if (decision.allowed) {
          if (!media.handle(req, res, path)) rpc(req, res);
          return;
        }
        const err: ConnectError = rateLimited(decision.retryAfterMs);
        res.setHeader("retry-after", err.metadata.get("retry-after") ?? "1");
        sendHttpError(req, res, err);
      },
      (err: unknown) => {
        log.error({ err, request_id: record.requestId }, "rate limit check failed");
        if (!media.handle(req, res, path)) rpc(req, res);
      },
    );
  };

  /** GET /account/export: the signed-in user's data as JSON (account-export.ts), through the read rate limit. */
  const exportRoute = (req: Request, res: Response, record: RequestRecord): void => {
    let claims: ReturnType<typeof authenticateBearerClaims>;
    try {
      claims = authenticateBearerClaims(headerOf(req, "authorization"), verifier);
    } catch (err) {
      sendHttpError(req, res, ConnectError.from(err));
      return;
    }
    if (claims === undefined) {
      sendHttpError(req, res, new ConnectError("sign in required", Code.Unauthenticated));
      return;
    }
    record.userId = claims.sub;
    const caller = { userId: claims.sub, sessionId: claims.sid };
    const run = async (): Promise<void> => {
      if (limiter !== undefined) {
        const decision = await limiter.admit("read", { userId: caller.userId, ip: record.ip }, record.requestId);
        if (!decision.allowed) throw rateLimited(decision.retryAfterMs);
      }
      const body = JSON.stringify(await exportAccount({ transportFor, vouch, timeoutMs: config.defaultTimeoutMs }, caller));
      res.writeHead(200, { "content-type": "application/json", "content-disposition": 'attachment; filename="chirp-account.json"', "cache-control": "no-store" });
      res.end(body);
    };
    run().catch((err: unknown) => {
      const e = ConnectError.from(err);
      if (e.code === Code.Internal || e.code === Code.Unknown) log.error({ err, request_id: record.requestId }, "account export failed");
      if (e.code === Code.ResourceExhausted) res.setHeader("retry-after", e.metadata.get("retry-after") ?? "1");
      sendHttpError(req, res, e);
    });
  };
  const transportFor = (service: DescService): Transport => {
    const i = PUBLIC_API.findIndex((p) => p.service === service);
    if (i < 0) throw new Error(`${service.typeName} is not behind the gateway`);
    return transports[i]!;
  };

  const handler = (req: Request, res: Response): void => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const record = beginRequest(req, res, path, log, config.trustedProxies);
    records.set(req, record);
    if (!applyCors(config.corsOrigins, req, res)) return;
    // Off the public port unless asked for: the metrics port serves them.
    if (config.publicMetrics && req.method === "GET" && path === "/metrics") {
      metricsText(metrics.registry).then(
        (body) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(body);
        },
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (req.method === "GET" && path === "/healthz") {
      // Draining: tell balancers to send no more.
      res.writeHead(closing ? 503 : 200, { "content-type": "text/plain" });
      res.end(closing ? "draining\n" : "ok\n");
      return;
    }
    if (web.handle(req, res, path)) return;
    // Uploads and downloads of files: plain HTTP, streamed (media.ts).
    if (path === "/media" || path.startsWith("/media/")) return mediaRoute(req, res, path, record);
    if (path === "/account/export" && req.method === "GET") return exportRoute(req, res, record);
    rpc(req, res);
  };

  const listener: Listener = await listenHttp1AndH2c(handler, config.host, config.port);
  return {
    port: listener.port,
    async close() {
      closing = true;
      streamsClosing.abort();
      await listener.close(config.shutdownGraceMs);
      shutdown.abort();
      for (const t of remote) t.close();
      media.close();
      await ended?.close();
      redis?.disconnect();
    },
  };
}

function headerOf(req: Request, name: string): string | null {
  const value = req.headers[name];
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

/** CORS for browser clients; returns false when the request was a preflight that is now answered. */
function applyCors(origins: readonly string[], req: Request, res: Response): boolean {
  const origin = req.headers.origin;
  if (typeof origin !== "string") return true;
  const allowed = origins.includes("*") || origins.includes(origin);
  if (allowed) {
    res.setHeader("access-control-allow-origin", origins.includes("*") ? "*" : origin);
    res.setHeader("vary", "Origin");
    res.setHeader("access-control-expose-headers", [...cors.exposedHeaders, REQUEST_ID_HEADER, "Retry-After"].join(", "));
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
