import { createServer as createHttp1Server, STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from "node:http2";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { Duplex } from "node:stream";

export type Handler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

export interface Listener {
  readonly port: number;
  /**
   * Stops accepting, ends idle connections at once, lets busy ones finish
   * their requests for up to `graceMs`, then cuts whatever is left.
   */
  close(graceMs?: number): Promise<void>;
}

// Every HTTP/2 connection opens with this preface; HTTP/1.1 never does.
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * One cleartext port for HTTP/1.1 (curl, browsers: Connect JSON and gRPC-Web)
 * and HTTP/2 with prior knowledge (gRPC clients, `buf curl --protocol grpc
 * --http2-prior-knowledge`). Node's h2c server cannot fall back to HTTP/1.1 by
 * itself, so the first bytes of each connection decide which server gets it.
 */
export async function listenHttp1AndH2c(handler: Handler, host: string, port: number): Promise<Listener> {
  const http1 = createHttp1Server({ keepAliveTimeout: 65_000 }, handler);
  http1.on("clientError", refuseUnparsedRequest);
  const http2 = createHttp2Server({}, handler);
  const sockets = new Set<Socket>();
  const h2Sockets = new WeakSet<Socket>();

  const tcp = createTcpServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isH2 && seen.length < H2_PREFACE.length) return; // wait for the rest of the preface
      socket.off("data", onData);
      socket.pause();
      if (isH2) {
        h2Sockets.add(socket);
        // The HTTP/2 session reads the socket's native handle directly and would
        // never see bytes put back with unshift(), so hand it a stream that replays them.
        http2.emit("connection", replaying(socket, seen));
      } else {
        socket.unshift(seen);
        http1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(port, host, () => resolve());
  });

  // Track what is in flight so close() can end idle keep-alive connections at
  // once and give busy ones a moment (the servers were never listen()ed, so
  // their own closeIdleConnections() knows nothing about these sockets).
  const busy = new Map<Socket, number>();
  let closing = false;
  http1.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    res.once("close", () => {
      const left = (busy.get(socket) ?? 1) - 1;
      busy.set(socket, left);
      if (closing && left === 0) socket.destroy();
    });
  });
  const sessions = new Set<ServerHttp2Session>();
  http2.on("session", (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  return {
    port: (tcp.address() as AddressInfo).port,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        closing = true;
        tcp.close(() => resolve());
        for (const session of sessions) session.close();
        for (const socket of sockets) {
          if ((busy.get(socket) ?? 0) === 0 && !isH2Socket(socket)) socket.destroy();
        }
        // Whatever is still busy after the grace period is cut.
        setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, graceMs).unref();
      }),
  };

  function isH2Socket(socket: Socket): boolean {
    return h2Sockets.has(socket);
  }
}

/** How long the rest of a request refused before it was parsed is read and dropped before the connection is cut. */
const LINGER_MS = 2000;

/** The connections refused by refuseUnparsedRequest: node:http reports each further chunk as another error. */
const refused = new WeakSet<Duplex>();

/**
 * Answers a request node:http could not parse (headers over its 16 KiB limit:
 * 431; a malformed request: 400) and then closes the connection the way RFC
 * 9112 section 9.6 asks: the answer, our half of the connection, then what the
 * client still sends is read and dropped (by the failed parser) until it ends
 * its half or LINGER_MS has passed.
 *
 * Node's own answer (no 'clientError' listener) writes the status and destroys
 * the socket at once. A client still sending its body then gets a reset for
 * the bytes that arrive after the close, and whenever one of its writes fails
 * before it has read the answer, all it learns is `write ECONNRESET` (the fuzz
 * run's 942 KB request with a 19 KB token, under load). media.ts lingers the
 * same way after refusing an upload.
 */
function refuseUnparsedRequest(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (refused.has(socket)) return;
  refused.add(socket);
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  // A response already under way on this connection (a pipelined request, or
  // the current request's chunked body is malformed): no request boundary is
  // left to linger on. What Node does: the answer if that response has not
  // started, then the cut.
  const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
  if (inFlight !== undefined) {
    if (!inFlight.headersSent) socket.write(rawAnswer(err));
    socket.destroy();
    return;
  }
  socket.end(rawAnswer(err));
  const cut = setTimeout(() => socket.destroy(), LINGER_MS);
  cut.unref();
  socket.once("close", () => clearTimeout(cut));
}

function rawAnswer(err: NodeJS.ErrnoException): string {
  const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "HPE_CHUNK_EXTENSIONS_OVERFLOW" ? 413 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  // Content-Length: the answer ends here, whenever our half of the connection does.
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}

/** A duplex over `socket` whose readable side starts with `head`, the bytes already read. */
function replaying(socket: Socket, head: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  // The HTTP/2 server reads the client's address off its socket: this stream's.
  Object.defineProperties(duplex, {
    remoteAddress: { get: () => socket.remoteAddress },
    remotePort: { get: () => socket.remotePort },
    remoteFamily: { get: () => socket.remoteFamily },
  });
  duplex.push(head);
  socket.on("data", (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("close", () => duplex.destroy());
  return duplex;
}
