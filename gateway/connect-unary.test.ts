// The lean Connect unary path (connect-unary.ts) against connect-es itself:
// the same routes behind two adapters, one with the lean path and one
// without, and every request sent to both as raw HTTP/1.1. Status, the
// headers a client reads and the body must be the same.
import * as http from "node:http";
import { gunzipSync } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimelineService } from "../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetSchema } from "../gen/chirp/tweet/v1/tweet_pb.js";
import { UserSchema } from "../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../gen/chirp/user/v1/user_service_pb.js";
import { listenHttp1AndH2c, type Listener } from "./listener.js";
import { rpcAdapter } from "./rpc-adapter.js";

const GET_USER = "/chirp.user.v1.UserService/GetUser";
const HOME = "/chirp.timeline.v1.TimelineService/GetHomeTimeline";

/** The class of each call's request headers, by adapter: shows which path served it. */
const headerClasses: Record<"lean" | "connect-es", string[]> = { lean: [], "connect-es": [] };
/** What each call's handler context looked like, by adapter. */
const seen: Record<"lean" | "connect-es", Array<{ headers: string; timeoutMs: number | undefined; protocol: string; url: string; method: string }>> = { lean: [], "connect-es": [] };

function adapter(lean: boolean): ReturnType<typeof rpcAdapter> {
  const which = lean ? "lean" : "connect-es";
  return rpcAdapter({
    leanUnary: lean,
    jsonOptions: { alwaysEmitImplicit: true, ignoreUnknownFields: false },
    maxTimeoutMs: 60_000,
    readMaxBytes: 4096,
    routes(router) {
      router.rpc(UserService.method.getUser, async (req, ctx) => {
        const handle = req.lookup.case === "handle" ? req.lookup.value : "";
        headerClasses[which].push(ctx.requestHeader.constructor.name);
        seen[which].push({
          headers: JSON.stringify([ctx.requestHeader.get("x-probe"), ctx.requestHeader.has("x-probe"), ctx.requestHeader.get("X-Multi"), [...ctx.requestHeader].filter(([k]) => k.startsWith("x-"))]),
          timeoutMs: ctx.timeoutMs() === undefined ? undefined : 1,
          protocol: ctx.protocolName,
          url: new URL(ctx.url).pathname,
          method: ctx.requestMethod,
        });
        if (handle === "boom") throw new ConnectError("backend broke", Code.Unavailable, { "x-retry-hint": "later" });
        if (handle === "plain") throw new Error("not a ConnectError: must not be shown");
        if (handle === "slow") {
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
          throw ConnectError.from(ctx.signal.reason);
        }
        ctx.responseHeader.set("x-answer", "yes");
        ctx.responseTrailer.set("x-trailer", "after");
        // A plain object, not a message: normalized on the way out.
        return { user: { id: 7n, handle, displayName: ctx.requestHeader.get("x-probe") ?? "none" } };
      });
      router.rpc(TimelineService.method.getHomeTimeline, async (req) => ({
        tweets: Array.from({ length: req.pageSize }, (_, i) =>
          create(TweetSchema, {
            id: BigInt(1000 + i),
            authorId: 5n,
            author: create(UserSchema, { id: 5n, handle: "author", displayName: "Ünïcode ✓" }),
            text: `tweet number ${i} with some words to make the page long enough to compress`,
            createTime: timestampFromMs(1_796_000_000_000 + i),
          }),
        ),
        nextPageToken: "",
      }));
    },
  });
}

let lean: Listener;
let slow: Listener;

beforeAll(async () => {
  lean = await listenHttp1AndH2c(adapter(true), "127.0.0.1", 0);
  slow = await listenHttp1AndH2c(adapter(false), "127.0.0.1", 0);
});

afterAll(async () => {
  await lean?.close(100);
  await slow?.close(100);
});

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | undefined>;
  readonly body: string;
}

function send(port: number, path: string, body: string | Buffer, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: "POST", headers: { "content-length": String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const raw = Buffer.concat(chunks);
        const shown = ["content-type", "content-encoding", "content-length", "x-answer", "trailer-x-trailer", "x-retry-hint"];
        resolve({
          status: res.statusCode ?? 0,
          headers: Object.fromEntries(shown.map((h) => [h, res.headers[h] as string | undefined])),
          body: (res.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8"),
        });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

const JSON_TYPE = { "content-type": "application/json" };

/** The same request to both adapters: the answers must be equal; returns the lean one's. */
async function same(path: string, body: string | Buffer, headers: Record<string, string> = JSON_TYPE): Promise<Answer> {
  const [a, b] = await Promise.all([send(lean.port, path, body, headers), send(slow.port, path, body, headers)]);
  expect(a).toEqual(b);
  return a;
}

describe("the lean Connect unary path answers as connect-es does", () => {
  it("an answer, with response headers and trailers, and the handler's context", async () => {
    seen.lean.length = 0;
    seen["connect-es"].length = 0;
    const a = await same(GET_USER, JSON.stringify({ handle: "alice" }), { ...JSON_TYPE, "x-probe": "p1", "x-multi": "a, b" });
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body)).toMatchObject({ user: { id: "7", handle: "alice", displayName: "p1", followerCount: 0 } });
    expect(a.headers).toMatchObject({ "x-answer": "yes", "trailer-x-trailer": "after", "content-type": "application/json" });
    expect(seen.lean).toEqual(seen["connect-es"]);
    expect(seen.lean).toHaveLength(1);
    expect(headerClasses.lean.at(-1)).toBe("NodeRequestHeaders");
    expect(headerClasses["connect-es"].at(-1)).toBe("Headers");
  });

  it("a page compressed as negotiated (gzip), and left alone without Accept-Encoding", async () => {
    const zipped = await same(HOME, JSON.stringify({ pageSize: 20 }), { ...JSON_TYPE, "accept-encoding": "gzip" });
    expect(zipped.headers["content-encoding"]).toBe("gzip");
    expect(JSON.parse(zipped.body).tweets).toHaveLength(20);
    const plain = await same(HOME, JSON.stringify({ pageSize: 20 }));
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body).toBe(zipped.body);
  });

  it("errors: a ConnectError with metadata, a plain Error (masked), bad JSON, an unknown field, an empty body", async () => {
    const boom = await same(GET_USER, JSON.stringify({ handle: "boom" }));
    expect(boom.status).toBe(503);
    expect(boom.headers["x-retry-hint"]).toBe("later");
    expect(JSON.parse(boom.body)).toEqual({ code: "unavailable", message: "backend broke" });
    const plain = await same(GET_USER, JSON.stringify({ handle: "plain" }));
    expect(JSON.parse(plain.body)).toEqual({ code: "internal", message: "internal error" });
    for (const body of ['{"handle": ', '{"nope": 1}', "", "[]", '{"handle": 5}']) {
      const bad = await same(GET_USER, body);
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.body).code).toBe("invalid_argument");
    }
  });

  it("the deadline from connect-timeout-ms ends the call with DeadlineExceeded", async () => {
    const a = await same(GET_USER, JSON.stringify({ handle: "slow" }), { ...JSON_TYPE, "connect-timeout-ms": "30" });
    expect(a.status).toBe(504);
    expect(JSON.parse(a.body).code).toBe("deadline_exceeded");
  });

  it("requests it does not take still get connect-es's answers: bad timeouts, too large, compressed, other types", async () => {
    const before = headerClasses.lean.length;
    for (const headers of [
      { ...JSON_TYPE, "connect-timeout-ms": "soon" },
      { ...JSON_TYPE, "connect-timeout-ms": "99999999" },
      { ...JSON_TYPE, "content-encoding": "zstd" },
      { "content-type": "application/json; charset=utf-8" },
      { "content-type": "text/plain" },
    ]) {
      await same(GET_USER, JSON.stringify({ handle: "alice" }), headers);
    }
    // Of these only the one with a charset reaches the handler, through the lean path; connect-es refuses the rest first.
    expect(headerClasses.lean.slice(before)).toEqual(["NodeRequestHeaders"]);
    const big = await same(GET_USER, JSON.stringify({ handle: "a".repeat(5000) }));
    expect(big.status).not.toBe(200);
  });
});
