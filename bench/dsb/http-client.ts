/**
 * The load generator's HTTP/1.1 client: keep-alive POSTs over plain sockets,
 * one request at a time per connection, as wrk2 sends them.
 *
 *   const client = new KeepAliveClient({ host: "127.0.0.1", port: 8080, timeoutMs: 10_000 });
 *   const reply = await client.post("/chirp.timeline.v1.TimelineService/GetHomeTimeline", "Authorization: Bearer ...\r\n", "{}");
 *   reply.status; reply.contentEncoding; reply.body;   // the body as sent (gzip is the caller's to undo)
 *
 * node:http's client made a ClientRequest, an IncomingMessage, their
 * streams, a socket timer and a dozen listeners per request: 0.14 ms of the
 * load generator's CPU per request against the floor and 0.35 ms against
 * Chirp, on the same two cores as the system it measures. Here a request is
 * one string written to an idle socket and its reply is parsed in place:
 * status line, Content-Length or chunked, Content-Encoding, Connection.
 * Timeouts are checked by one interval over the requests in flight, not a
 * timer each. A reply without a length (read until close) and 1xx replies
 * are not supported: neither the gateway nor the floor sends them.
 */
import { connect, type Socket } from "node:net";

export interface HttpReply {
  readonly status: number;
  /** The Content-Encoding header, lower-cased ("" when absent). */
  readonly contentEncoding: string;
  readonly body: Buffer;
}

/** A failed exchange: `code` is `timeout`, `closed` (the server closed the connection before replying), `bad_reply` or the socket error's code. */
export class HttpClientError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface KeepAliveClientOptions {
  readonly host: string;
  readonly port: number;
  /** A request not answered in this long fails with `timeout` and its connection is closed. */
  readonly timeoutMs: number;
  /** Connections at most; requests beyond wait for one to be free. Default 512. */
  readonly maxSockets?: number;
}

const CRLF_CRLF = Buffer.from("\r\n\r\n");

interface Pending {
  readonly request: string;
  readonly resolve: (reply: HttpReply) => void;
  readonly reject: (err: Error) => void;
}

/** One connection: at most one request in flight, its reply parsed as the bytes arrive. */
class Connection {
  readonly socket: Socket;
  current: (Pending & { deadline: number }) | undefined;
  private buffered: Buffer | undefined;
  /** Parsed head of the reply being read, once its header block is complete. */
  private head: { status: number; contentEncoding: string; length: number; chunked: boolean; close: boolean; bodyStart: number } | undefined;
  closed = false;

  constructor(
    opts: KeepAliveClientOptions,
    private readonly done: (conn: Connection, reusable: boolean) => void,
  ) {
    this.socket = connect({ host: opts.host, port: opts.port, noDelay: true });
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("error", (err: NodeJS.ErrnoException) => this.fail(new HttpClientError(err.code ?? "socket_error", err.message)));
    this.socket.on("close", () => this.fail(new HttpClientError("closed", "the server closed the connection")));
  }

  send(p: Pending, deadline: number): void {
    this.current = { ...p, deadline };
    this.socket.write(p.request, "latin1");
  }

  /** Ends the request in flight with `err` and closes the connection (it may hold part of a reply). */
  fail(err: Error): void {
    const current = this.current;
    this.current = undefined;
    if (!this.closed) {
      this.closed = true;
      this.socket.destroy();
      this.done(this, false);
    }
    current?.reject(err);
  }

  private onData(chunk: Buffer): void {
    if (this.current === undefined) return this.fail(new HttpClientError("bad_reply", "bytes arrived with no request in flight"));
    const buf = this.buffered === undefined ? chunk : Buffer.concat([this.buffered, chunk]);
    this.buffered = buf;
    if (this.head === undefined) {
      const end = buf.indexOf(CRLF_CRLF);
      if (end < 0) return;
      const head = parseHead(buf.toString("latin1", 0, end));
      if (head === undefined) return this.fail(new HttpClientError("bad_reply", "not an HTTP/1.1 reply head"));
      this.head = { ...head, bodyStart: end + 4 };
    }
    const h = this.head;
    let body: Buffer;
    if (h.chunked) {
      const whole = dechunk(buf, h.bodyStart);
      if (whole === null) return this.fail(new HttpClientError("bad_reply", "bad chunk size"));
      if (whole === undefined) return;
      body = whole;
    } else {
      if (buf.length < h.bodyStart + h.length) return;
      body = buf.subarray(h.bodyStart, h.bodyStart + h.length);
    }
    const current = this.current;
    this.current = undefined;
    this.buffered = undefined;
    this.head = undefined;
    if (h.close) {
      this.closed = true;
      this.socket.destroy();
    }
    this.done(this, !h.close);
    current.resolve({ status: h.status, contentEncoding: h.contentEncoding, body });
  }
}

/** The status and the headers this client acts on; undefined if `text` is not a reply head it can read. */
function parseHead(text: string): { status: number; contentEncoding: string; length: number; chunked: boolean; close: boolean } | undefined {
  if (!text.startsWith("HTTP/1.1 ") && !text.startsWith("HTTP/1.0 ")) return undefined;
  const status = Number(text.slice(9, 12));
  if (!Number.isInteger(status) || status < 200) return undefined;
  let contentEncoding = "";
  let length = -1;
  let chunked = false;
  let close = text.startsWith("HTTP/1.0 ");
  for (const line of text.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim().toLowerCase();
    if (name === "content-length") length = Number(value);
    else if (name === "content-encoding") contentEncoding = value;
    else if (name === "transfer-encoding") chunked = value.split(",").some((v) => v.trim() === "chunked");
    else if (name === "connection") close = value === "close" ? true : value === "keep-alive" ? false : close;
  }
  if (!chunked && !(Number.isSafeInteger(length) && length >= 0)) return undefined;
  return { status, contentEncoding, length: chunked ? 0 : length, chunked, close };
}

/** The body of a chunked reply starting at `start` of `buf`: undefined while it is incomplete, null if malformed (trailers are skipped). */
function dechunk(buf: Buffer, start: number): Buffer | undefined | null {
  const parts: Buffer[] = [];
  let at = start;
  for (;;) {
    const lineEnd = buf.indexOf("\r\n", at, "latin1");
    if (lineEnd < 0) return undefined;
    const size = parseInt(buf.toString("latin1", at, lineEnd).split(";")[0]!, 16);
    if (!Number.isSafeInteger(size) || size < 0) return null;
    at = lineEnd + 2;
    if (size === 0) {
      // Trailers, then an empty line.
      const end = buf.indexOf(CRLF_CRLF, at - 2);
      if (end < 0) return undefined;
      return parts.length === 1 ? parts[0] : Buffer.concat(parts);
    }
    if (buf.length < at + size + 2) return undefined;
    parts.push(buf.subarray(at, at + size));
    at += size + 2;
  }
}

export class KeepAliveClient {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly waiting: Pending[] = [];
  private readonly hostHeader: string;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: KeepAliveClientOptions) {
    this.hostHeader = `Host: ${opts.host}:${opts.port}\r\n`;
  }

  /**
   * POSTs `body` (UTF-8) to `path`. `headers` are complete header lines, each
   * ending in CRLF, sent after Host and Content-Length. Resolves with any
   * status; rejects with an HttpClientError when no reply came.
   */
  post(path: string, headers: string, body: string): Promise<HttpReply> {
    if (this.closed) return Promise.reject(new HttpClientError("closed", "client closed"));
    const bytes = Buffer.byteLength(body);
    // Latin-1 on the wire: the body's UTF-8 bytes spelled as Latin-1 characters.
    const wireBody = bytes === body.length ? body : Buffer.from(body, "utf8").toString("latin1");
    const request = `POST ${path} HTTP/1.1\r\n${this.hostHeader}Content-Length: ${bytes}\r\n${headers}\r\n${wireBody}`;
    return new Promise((resolve, reject) => this.dispatch({ request, resolve, reject }));
  }

  /** Connections open now (in flight or idle). */
  openConnections(): number {
    return this.all.size;
  }

  /** Closes every connection; requests in flight fail with `closed`. */
  close(): void {
    this.closed = true;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    for (const p of this.waiting.splice(0)) p.reject(new HttpClientError("closed", "client closed"));
    for (const conn of [...this.all]) conn.fail(new HttpClientError("closed", "client closed"));
  }

  private dispatch(p: Pending): void {
    let conn = this.idle.pop();
    while (conn !== undefined && conn.closed) conn = this.idle.pop();
    if (conn === undefined) {
      if (this.all.size >= (this.opts.maxSockets ?? 512)) {
        this.waiting.push(p);
        return;
      }
      conn = new Connection(this.opts, (c, reusable) => this.released(c, reusable));
      this.all.add(conn);
    }
    this.sweeper ??= setInterval(() => this.sweep(), Math.min(250, this.opts.timeoutMs)).unref();
    conn.send(p, performance.now() + this.opts.timeoutMs);
  }

  private released(conn: Connection, reusable: boolean): void {
    if (!reusable) {
      this.all.delete(conn);
      const idleAt = this.idle.indexOf(conn);
      if (idleAt >= 0) this.idle.splice(idleAt, 1);
    }
    const next = this.waiting.shift();
    if (next !== undefined) {
      if (reusable) conn.send(next, performance.now() + this.opts.timeoutMs);
      else this.dispatch(next);
      return;
    }
    if (reusable) this.idle.push(conn);
  }

  /** Fails the requests past their deadline (their connections are closed). */
  private sweep(): void {
    const now = performance.now();
    for (const conn of this.all) {
      if (conn.current !== undefined && conn.current.deadline <= now) {
        conn.fail(new HttpClientError("timeout", `no reply in ${this.opts.timeoutMs} ms`));
      }
    }
  }
}
