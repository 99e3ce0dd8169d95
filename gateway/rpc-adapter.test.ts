import * as http from "node:http";
import * as http2 from "node:http2";
import { gunzipSync } from "node:zlib";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamEventsResponseSchema } from "../gen/chirp/timeline/v1/timeline_service_pb.js";
import { GetHomeTimelineResponseSchema, TimelineService } from "../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetSchema } from "../gen/chirp/tweet/v1/tweet_pb.js";
import { UserSchema } from "../gen/chirp/user/v1/user_pb.js";
import { GetUserRequestSchema, UserService } from "../gen/chirp/user/v1/user_service_pb.js";
import { listenHttp1AndH2c, type Listener } from "./listener.js";
import { rpcAdapter } from "./rpc-adapter.js";

// The adapter with real handlers on a real listener; requests are raw bytes so
// that they can be exactly as broken as a hostile client makes them.
describe("rpcAdapter: an undecodable request is the client's fault", () => {
  let listener: Listener;
  let base: string;

  beforeAll(async () => {
    const handler = rpcAdapter({
      routes(router) {
        router.rpc(UserService.method.getUser, async (req) => {
          if (req.lookup.case === "handle" && req.lookup.value === "boom") throw new ConnectError("backend broke", Code.Internal);
          return { user: create(UserSchema, { id: 1n, handle: req.lookup.case === "handle" ? req.lookup.value : "x" }) };
        });
        router.rpc(TimelineService.method.streamEvents, async function* () {
          yield create(StreamEventsResponseSchema, {});
        });
      },
    });
    listener = await listenHttp1AndH2c(handler, "127.0.0.1", 0);
    base = `http://127.0.0.1:${listener.port}`;
  });

  afterAll(async () => {
    await listener?.close(100);
  });

  const getUser = "/chirp.user.v1.UserService/GetUser";
  const streamEvents = "/chirp.timeline.v1.TimelineService/StreamEvents";
  // Field 1 (user_id) with a varint that never ends.
  const garbage = new Uint8Array([0x08, 0xff, 0xff]);
  const valid = toBinary(GetUserRequestSchema, create(GetUserRequestSchema, { lookup: { case: "handle", value: "alice" } }));
  const boom = toBinary(GetUserRequestSchema, create(GetUserRequestSchema, { lookup: { case: "handle", value: "boom" } }));

  it("Connect unary (application/proto): InvalidArgument, HTTP 400", async () => {
    const res = await post(`${base}${getUser}`, "application/proto", garbage);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString())).toMatchObject({ code: "invalid_argument" });
    expect(JSON.parse(res.body.toString()).message).toMatch(/^parse binary: /);
  });

  it("Connect server stream (application/connect+proto): InvalidArgument in the end-stream message", async () => {
    const res = await post(`${base}${streamEvents}`, "application/connect+proto", envelope(0, garbage));
    expect(res.status).toBe(200);
    const frames = envelopes(res.body);
    const end = frames.at(-1)!;
    expect(end.flags & 0x02).toBe(0x02);
    expect(JSON.parse(end.data.toString())).toMatchObject({ error: { code: "invalid_argument" } });
  });

  it("gRPC-Web: grpc-status 3 in the trailer frame", async () => {
    const res = await post(`${base}${getUser}`, "application/grpc-web+proto", envelope(0, garbage));
    const trailer = envelopes(res.body).at(-1)!;
    expect(trailer.flags & 0x80).toBe(0x80);
    expect(trailer.data.toString()).toMatch(/grpc-status: ?3\r\n/);
  });

  it("gRPC-Web: a frame flagged compressed without an encoding is InvalidArgument too", async () => {
    const res = await post(`${base}${getUser}`, "application/grpc-web+proto", envelope(1, valid));
    expect(envelopes(res.body).at(-1)!.data.toString()).toMatch(/grpc-status: ?3\r\n/);
  });

  it("gRPC over HTTP/2: grpc-status 3 in the trailers", async () => {
    const res = await grpcCall(`${base}`, getUser, envelope(0, garbage));
    expect(res.trailers["grpc-status"] ?? res.headers["grpc-status"]).toBe("3");
    const server = await grpcCall(`${base}`, streamEvents, envelope(0, garbage));
    expect(server.trailers["grpc-status"] ?? server.headers["grpc-status"]).toBe("3");
  });

  it("leaves an Internal raised by the implementation as Internal, in every protocol", async () => {
    const unary = await post(`${base}${getUser}`, "application/proto", boom);
    expect(unary.status).toBe(500);
    expect(JSON.parse(unary.body.toString())).toMatchObject({ code: "internal", message: "backend broke" });
    const web = await post(`${base}${getUser}`, "application/grpc-web+proto", envelope(0, boom));
    expect(envelopes(web.body).at(-1)!.data.toString()).toMatch(/grpc-status: ?13\r\n/);
    const grpc = await grpcCall(base, getUser, envelope(0, boom));
    expect(grpc.trailers["grpc-status"] ?? grpc.headers["grpc-status"]).toBe("13");
  });

  it("answers well-formed requests as before", async () => {
    const unary = await post(`${base}${getUser}`, "application/json", Buffer.from(JSON.stringify({ handle: "alice" })));
    expect(unary.status).toBe(200);
    expect(JSON.parse(unary.body.toString())).toMatchObject({ user: { handle: "alice" } });
    const grpc = await grpcCall(base, getUser, envelope(0, valid));
    expect(grpc.trailers["grpc-status"]).toBe("0");
    const stream = await post(`${base}${streamEvents}`, "application/connect+json", envelope(0, Buffer.from("{}")));
    expect(JSON.parse(envelopes(stream.body).at(-1)!.data.toString())).toEqual({});
  });
});

// The adapter writes Connect unary JSON answers itself (fast-json.ts): the
// same bytes connect-es's generic encoder writes, compressed as it would.
describe("rpcAdapter: Connect unary JSON answers", () => {
  let listener: Listener;
  let base: string;
  const jsonOptions = { alwaysEmitImplicit: true, ignoreUnknownFields: false };
  const page = (n: number) =>
    create(GetHomeTimelineResponseSchema, {
      tweets: Array.from({ length: n }, (_, i) =>
        create(TweetSchema, {
          id: 1_000_000_000_000_000_000n + BigInt(i),
          authorId: 42n,
          author: create(UserSchema, { id: 42n, handle: "zoë", displayName: "Zoë 🐦" }),
          text: `tweet ${i}: "quoted" \u2028 日本語`,
          createTime: { seconds: 1_764_979_200n + BigInt(i), nanos: i * 1_000_000 },
          hashtags: ["a", "b"],
        }),
      ),
      nextPageToken: n === 0 ? "" : "next",
    });

  beforeAll(async () => {
    const handler = rpcAdapter({
      jsonOptions,
      routes(router) {
        router.rpc(TimelineService.method.getHomeTimeline, async (req) => {
          if (req.pageSize === 99) throw new ConnectError("no such page", Code.InvalidArgument);
          // A partial answer (not a message) is completed, as connect-es does.
          if (req.pageSize === 98) return { nextPageToken: "plain" };
          return page(req.pageSize);
        });
      },
    });
    listener = await listenHttp1AndH2c(handler, "127.0.0.1", 0);
    base = `http://127.0.0.1:${listener.port}`;
  });

  afterAll(async () => {
    await listener?.close(100);
  });

  const home = "/chirp.timeline.v1.TimelineService/GetHomeTimeline";
  const ask = (pageSize: number, headers: Record<string, string> = {}) =>
    request(`${base}${home}`, { "content-type": "application/json", ...headers }, Buffer.from(JSON.stringify({ pageSize })));

  it("writes the bytes protobuf-es's toJsonString writes, with their length", async () => {
    for (const n of [0, 1, 3]) {
      const res = await ask(n);
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe(toJsonString(GetHomeTimelineResponseSchema, page(n), jsonOptions));
      expect(res.headers["content-length"]).toBe(String(res.body.byteLength));
      expect(res.headers["content-type"]).toBe("application/json");
    }
    const partial = await ask(98);
    expect(JSON.parse(partial.body.toString())).toEqual({ tweets: [], nextPageToken: "plain" });
  });

  it("compresses what reaches compressMinBytes, with the encoding the client accepts", async () => {
    const res = await ask(20, { "accept-encoding": "gzip" });
    expect(res.headers["content-encoding"]).toBe("gzip");
    expect(res.headers["content-length"]).toBe(String(res.body.byteLength));
    expect(gunzipSync(res.body).toString()).toBe(toJsonString(GetHomeTimelineResponseSchema, page(20), jsonOptions));
    const small = await ask(0, { "accept-encoding": "gzip" });
    expect(small.headers["content-encoding"]).toBeUndefined();
  });

  it("leaves errors to connect-es", async () => {
    const res = await ask(99);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body.toString())).toEqual({ code: "invalid_argument", message: "no such page" });
  });
});

describe("rpcAdapter: Connect unary JSON answers with compressMinBytes 0", () => {
  let listener: Listener;
  const jsonOptions = { alwaysEmitImplicit: true };
  beforeAll(async () => {
    const handler = rpcAdapter({
      jsonOptions,
      compressMinBytes: 0,
      routes(router) {
        router.rpc(TimelineService.method.getHomeTimeline, async () => create(GetHomeTimelineResponseSchema, { nextPageToken: "x" }));
      },
    });
    listener = await listenHttp1AndH2c(handler, "127.0.0.1", 0);
  });
  afterAll(async () => {
    await listener?.close(100);
  });

  it("compresses the answer itself, once, whatever connect-es did with the stand-in", async () => {
    const url = `http://127.0.0.1:${listener.port}/chirp.timeline.v1.TimelineService/GetHomeTimeline`;
    const gz = await request(url, { "content-type": "application/json", "accept-encoding": "gzip" }, Buffer.from("{}"));
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gz.body).toString()).toBe('{"tweets":[],"nextPageToken":"x"}');
    const plain = await request(url, { "content-type": "application/json" }, Buffer.from("{}"));
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.toString()).toBe('{"tweets":[],"nextPageToken":"x"}');
  });
});

function request(url: string, headers: Record<string, string>, body: Uint8Array): Promise<RawResponse & { headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers: { ...headers, "content-length": body.byteLength } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

interface RawResponse {
  status: number;
  body: Buffer;
}

function post(url: string, contentType: string, body: Uint8Array): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers: { "content-type": contentType, "content-length": body.byteLength } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function grpcCall(
  base: string,
  path: string,
  body: Uint8Array,
): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(base);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers" });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => (headers = h));
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", () => {});
    stream.on("end", () => {
      session.close();
      resolve({ headers, trailers });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

function envelope(flags: number, data: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(data.byteLength, 1);
  return Buffer.concat([head, data]);
}

function envelopes(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    out.push({ flags: body[at]!, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}
