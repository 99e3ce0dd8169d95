// A request node:http refuses before it is parsed (headers over 16 KiB, a
// malformed request line) is answered, and the connection is closed without a
// reset while the client is still sending the request's body: the client
// reads the answer, instead of `write ECONNRESET` (the fuzz run in
// test/e2e/security.test.ts lost its 431 that way under load).
import { once } from "node:events";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenHttp1AndH2c, type Listener } from "./listener.js";

let listener: Listener;

beforeAll(async () => {
  listener = await listenHttp1AndH2c(
    (req, res) => {
      req.resume();
      req.once("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      });
    },
    "127.0.0.1",
    0,
  );
});

afterAll(() => listener.close(0));

interface Seen {
  readonly answer: string;
  readonly sent: number;
  readonly error: string | undefined;
}

/**
 * Sends `head`, waits for the whole answer, then sends `body` in pieces, each
 * handed to the kernel before the next, and ends: the answer, how much of the
 * body went out, and the first socket error. The body goes out after the
 * answer, as a client's does when the server answers while it is still
 * writing; waiting for the answer makes it certain, not a race: a server that
 * has closed by then resets the first piece, and the next write fails.
 */
async function sendAfterTheAnswer(head: string, body: Buffer): Promise<Seen> {
  const socket = connect({ host: "127.0.0.1", port: listener.port, allowHalfOpen: true });
  let error: string | undefined;
  socket.on("error", (err: NodeJS.ErrnoException) => {
    error ??= err.code ?? err.message;
  });
  // Not events.once: it would reject on the 'error' this records.
  const closed = new Promise<boolean>((resolve) => socket.once("close", resolve));
  let answer = "";
  const answered = new Promise<void>((resolve) => {
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      if (answer.includes("\r\n\r\n")) resolve();
    });
    socket.once("close", () => resolve());
  });
  await once(socket, "connect");
  socket.write(head);
  await answered;
  const PIECE = 64 * 1024;
  let sent = 0;
  while (sent < body.length && error === undefined && !socket.destroyed) {
    const piece = body.subarray(sent, sent + PIECE);
    const written = await new Promise<boolean>((resolve) => socket.write(piece, (err) => resolve(err === undefined || err === null)));
    if (!written) break;
    sent += piece.length;
  }
  socket.end();
  await closed;
  return { answer, sent, error };
}

describe("a request refused before it is parsed", () => {
  const body = Buffer.alloc(1024 * 1024, "a");
  const cases = [
    {
      name: "headers over node:http's 16 KiB limit",
      head: `POST /chirp.media.v1.MediaService/GetMedia HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer ${"x".repeat(20_000)}\r\ncontent-length: ${body.length}\r\n\r\n`,
      statusLine: "HTTP/1.1 431 Request Header Fields Too Large",
    },
    {
      name: "a malformed request line",
      head: `POST /a b c HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n`,
      statusLine: "HTTP/1.1 400 Bad Request",
    },
  ];

  it.each(cases)("($name) is answered, and the rest of its body is read, not reset", async ({ head, statusLine }) => {
    const seen = await sendAfterTheAnswer(head, body);
    expect(seen.answer.split("\r\n")[0]).toBe(statusLine);
    expect(seen.answer.toLowerCase()).toContain("connection: close");
    expect({ sent: seen.sent, error: seen.error }).toEqual({ sent: body.length, error: undefined });
  });

  it("leaves the listener serving: the next connection's request is answered", async () => {
    const res = await fetch(`http://127.0.0.1:${listener.port}/x`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("{}");
  });
});
