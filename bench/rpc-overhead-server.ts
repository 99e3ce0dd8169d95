/**
 * Server child of bench/rpc-overhead.ts: `tsx bench/rpc-overhead-server.ts <kind>`
 * forked with an IPC channel. Serves chirp.user.v1.UserService/GetUser on
 * 127.0.0.1 (ephemeral port) with one of:
 *
 *   grpc-js       the mesh's GrpcServer (lib/rpc/grpc-server.ts), as is:
 *                 protovalidate + metrics + access-log check around the handler
 *   connect-node  connectNodeAdapter on an h2c http2 server, with the same
 *                 validateRequest + observeCall around the same handler, so the
 *                 difference to grpc-js is the RPC stack only
 *   node-http     the floor: node:http, protobuf decode -> handler -> encode,
 *                 no framing, no validation, no metrics
 *
 * Between "start" and "stop" it measures its own process.cpuUsage() and reports
 * the delta, so the driver can attribute server CPU per call.
 */
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { GetUserRequestSchema, GetUserResponseSchema, UserService } from "../gen/chirp/user/v1/user_service_pb.js";
import { createLogger } from "../lib/logger.js";
import { createMetrics } from "../lib/metrics.js";
import { GrpcServer } from "../lib/rpc/grpc-server.js";
import { REQUEST_ID_HEADER } from "../lib/rpc/metadata.js";
import { observeCall } from "../lib/rpc/observe.js";
import { validateRequest } from "../lib/rpc/validation.js";
import { GET_USER_PATH, getUser, SERVER_KINDS, type FromServer, type ServerKind, type ToServer } from "./rpc-overhead-shared.js";

interface Running {
  readonly port: number;
  close(): Promise<void>;
}

function send(message: FromServer): void {
  process.send?.(message);
}

async function listen(server: http.Server | http2.Http2Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

async function startGrpcJs(): Promise<Running> {
  const server = new GrpcServer({ log: createLogger("bench", "silent"), metrics: createMetrics("bench") }).register(UserService, {
    getUser: (request) => getUser(request),
  });
  const port = await server.listen("127.0.0.1", 0);
  return { port, close: () => server.close(1000) };
}

async function startConnectNode(): Promise<Running> {
  const log = createLogger("bench", "silent");
  const metrics = createMetrics("bench");
  const handler = connectNodeAdapter({
    routes(router) {
      router.service(UserService, {
        getUser: (request, ctx) =>
          observeCall(
            metrics,
            log,
            { service: "UserService", method: "GetUser", requestId: ctx.requestHeader.get(REQUEST_ID_HEADER) ?? undefined },
            async () => {
              validateRequest(GetUserRequestSchema, request);
              return getUser(request);
            },
          ),
      });
    },
  });
  const server = http2.createServer(handler);
  const port = await listen(server);
  return { port, close: () => closeServer(server) };
}

async function startNodeHttp(): Promise<Running> {
  const server = http.createServer((req, res) => {
    if (req.method !== "POST" || req.url !== GET_USER_PATH) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request = fromBinary(GetUserRequestSchema, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      const body = toBinary(GetUserResponseSchema, getUser(request));
      res.writeHead(200, { "content-type": "application/proto", "content-length": body.byteLength });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  const port = await listen(server);
  return {
    port,
    close: () => {
      server.closeAllConnections();
      return closeServer(server);
    },
  };
}

function closeServer(server: http.Server | http2.Http2Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function main(): Promise<void> {
  const kind = process.argv[2] as ServerKind | undefined;
  if (kind === undefined || !SERVER_KINDS.includes(kind)) throw new Error(`usage: rpc-overhead-server.ts <${SERVER_KINDS.join("|")}>`);
  if (process.send === undefined) throw new Error("rpc-overhead-server.ts must be forked with an IPC channel");

  // The driver going away (even killed) closes the IPC channel: never outlive it.
  process.on("disconnect", () => process.exit(0));

  const running = kind === "grpc-js" ? await startGrpcJs() : kind === "connect-node" ? await startConnectNode() : await startNodeHttp();
  let since: NodeJS.CpuUsage | undefined;

  process.on("message", (message: ToServer) => {
    switch (message.type) {
      case "start":
        since = process.cpuUsage();
        send({ type: "started" });
        break;
      case "stop": {
        const used = process.cpuUsage(since);
        send({ type: "stopped", userMicros: used.user, systemMicros: used.system });
        break;
      }
      case "shutdown": {
        // Give a graceful close a moment, then leave regardless.
        const timer = setTimeout(() => process.exit(0), 2000);
        running.close().finally(() => {
          clearTimeout(timer);
          process.exit(0);
        });
        break;
      }
    }
  });
  send({ type: "ready", port: running.port });
}

main().catch((err: unknown) => {
  send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
