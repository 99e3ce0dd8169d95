import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { HttpClientError, KeepAliveClient } from "./http-client.js";

let server: Server | undefined;
let client: KeepAliveClient | undefined;
const sockets = new Set<Socket>();

afterEach(async () => {
  client?.close();
  client = undefined;
  for (const s of sockets) s.destroy();
  sockets.clear();
  if (server !== undefined) await new Promise((r) => server!.close(r));
  server = undefined;
});

async function serve(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handler(req, Buffer.concat(chunks).toString("utf8"), res));
  });
  server.on("connection", (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { port: (server.address() as AddressInfo).port, connections: () => connections };
}

describe("KeepAliveClient", () => {
  it("sends the headers and a UTF-8 body, reads a Content-Length reply, and reuses its connection", async () => {
    const seen: Array<{ path: string; auth: string | undefined; type: string | undefined; body: string }> = [];
    const s = await serve((req, body, res) => {
      seen.push({ path: req.url!, auth: req.headers.authorization, type: req.headers["content-type"], body });
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ echo: body }));
    });
    client = new KeepAliveClient({ host: "127.0.0.1", port: s.port, timeoutMs: 5_000 });
    const headers = "Content-Type: application/json\r\nAuthorization: Bearer t0k\r\n";
    const a = await client.post("/a", headers, '{"text":"héllo ✓"}');
    const b = await client.post("/b", headers, "{}");
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body.toString("utf8"))).toEqual({ echo: '{"text":"héllo ✓"}' });
    expect(b.body.toString()).toBe(JSON.stringify({ echo: "{}" }));
    expect(seen).toEqual([
      { path: "/a", auth: "Bearer t0k", type: "application/json", body: '{"text":"héllo ✓"}' },
      { path: "/b", auth: "Bearer t0k", type: "application/json", body: "{}" },
    ]);
    expect(s.connections()).toBe(1);
  });

  it("reads a chunked reply and leaves a gzip body for the caller, with any status", async () => {
    const s = await serve((req, _body, res) => {
      if (req.url === "/gzip") {
        res.writeHead(404, { "content-encoding": "gzip", "content-length": "" + gzipSync('{"code":"not_found"}').length });
        res.end(gzipSync('{"code":"not_found"}'));
        return;
      }
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("part one, ");
      setImmediate(() => res.end("part two"));
    });
    client = new KeepAliveClient({ host: "127.0.0.1", port: s.port, timeoutMs: 5_000 });
    const chunked = await client.post("/chunked", "", "");
    expect(chunked.body.toString()).toBe("part one, part two");
    const gz = await client.post("/gzip", "", "");
    expect(gz.status).toBe(404);
    expect(gz.contentEncoding).toBe("gzip");
    expect(gunzipSync(gz.body).toString()).toBe('{"code":"not_found"}');
    expect(s.connections()).toBe(1);
  });

  it("opens a new connection after a reply that closes its own, and after the server closed an idle one", async () => {
    const s = await serve((req, _body, res) => {
      if (req.url === "/close") res.setHeader("connection", "close");
      res.end("ok");
    });
    client = new KeepAliveClient({ host: "127.0.0.1", port: s.port, timeoutMs: 5_000 });
    expect((await client.post("/close", "", "")).body.toString()).toBe("ok");
    expect((await client.post("/keep", "", "")).body.toString()).toBe("ok");
    expect(s.connections()).toBe(2);
    // The server drops the idle connection; the client sees it close and does not reuse it.
    expect(client.openConnections()).toBe(1);
    for (const socket of sockets) socket.destroy();
    while (client.openConnections() > 0) await new Promise((r) => setImmediate(r));
    expect((await client.post("/keep", "", "")).body.toString()).toBe("ok");
    expect(s.connections()).toBe(3);
  });

  it("queues requests beyond maxSockets and fails one that gets no reply with `timeout`", async () => {
    const s = await serve((req, _body, res) => {
      if (req.url !== "/never") res.end(req.url);
    });
    client = new KeepAliveClient({ host: "127.0.0.1", port: s.port, timeoutMs: 200, maxSockets: 1 });
    const replies = await Promise.all(["/1", "/2", "/3"].map((p) => client!.post(p, "", "")));
    expect(replies.map((r) => r.body.toString())).toEqual(["/1", "/2", "/3"]);
    expect(s.connections()).toBe(1);
    const err = await client.post("/never", "", "").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpClientError);
    expect((err as HttpClientError).code).toBe("timeout");
    // The timed-out connection was closed; the next request gets a new one.
    expect((await client.post("/4", "", "")).body.toString()).toBe("/4");
    expect(s.connections()).toBe(2);
  });
});
