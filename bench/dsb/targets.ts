/**
 * What the load generator drives: Chirp through the gateway's public API
 * (Connect over HTTP/1.1 keep-alive, as a browser or curl would), or the
 * floor server (floor-server.ts) through plain node:http. Both run the same
 * Op and count the calls it took.
 *
 * GetUserTimeline has keyset page tokens only (ARCHITECTURE section 3: opaque
 * tokens, no offset field), so "10 tweets from offset k" is emulated as a
 * client would: one call of page size min(k, 100) to skip k tweets, then,
 * unless the timeline ended there, one call of page size 10 from its token
 * (k = 0: the one call). The skipped tweets are hydrated too, which
 * DeathStarBench's ZREVRANGE over post ids does not do; the floor does the
 * same two reads, so the ratio compares like with like.
 *
 * The JSON client is what a browser's fetch does with the Connect protocol
 * (a POST of the request as JSON, `Connect-Protocol-Version: 1`, gzip
 * accepted, the reply parsed with JSON.parse), sent by the keep-alive client
 * of http-client.ts, which both targets use: the load generator shares the
 * machine's two cores with what it measures, so its cost per request is kept
 * low and the same for both (node:http's client cost 0.14 ms per request
 * against the floor and 0.35 against Chirp; connect-node's, which decodes
 * every reply into protobuf messages, 1.5-2 ms). `--binary` keeps
 * connect-node's client with the binary format.
 */
import { Agent } from "node:http";
import { gunzipSync } from "node:zlib";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { KeepAliveClient } from "./http-client.js";
import type { Op } from "./workload.js";

export const HOME_PAGE = 10;
export const USER_PAGE = 10;
export const MAX_PAGE = 100;

/** A failed request, by code: a Connect code name (`unavailable`), `http_<status>`, or `client_<reason>`. */
export class OpError extends Error {
  constructor(readonly code: string, message?: string) {
    super(message ?? code);
  }
}

export interface Target {
  readonly name: string;
  /** Runs the op; resolves to the number of calls it made. */
  run(op: Op): Promise<number>;
  close(): void;
}

export function codeOf(err: unknown): string {
  if (err instanceof OpError) return err.code;
  if (err instanceof ConnectError) return Code[err.code].replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase());
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? `client_${code.toLowerCase()}` : "client_error";
}

export function createChirpTarget(opts: { gatewayUrl: string; tokenOf: (user: number) => string; userIdOf: (user: number) => bigint; timeoutMs: number; binary?: boolean }): Target {
  return opts.binary === true ? createChirpProtoTarget(opts) : createChirpJsonTarget(opts);
}

const TIMELINE = "/chirp.timeline.v1.TimelineService/";
const TWEET = "/chirp.tweet.v1.TweetService/";

/** Connect's unary JSON protocol over keep-alive HTTP/1.1 (http-client.ts): one POST, the reply parsed as JSON; an error reply becomes an OpError of its code. */
function createChirpJsonTarget(opts: { gatewayUrl: string; tokenOf: (user: number) => string; userIdOf: (user: number) => bigint; timeoutMs: number }): Target {
  const base = new URL(opts.gatewayUrl);
  const client = new KeepAliveClient({ host: base.hostname, port: Number(base.port || 80), timeoutMs: opts.timeoutMs });
  const common = `Content-Type: application/json\r\nConnect-Protocol-Version: 1\r\nConnect-Timeout-Ms: ${opts.timeoutMs}\r\nAccept-Encoding: gzip\r\n`;
  // A user's header lines, made once (the token does not change during a run).
  const headersOf = new Map<number, string>();
  const headers = (user: number): string => {
    let h = headersOf.get(user);
    if (h === undefined) headersOf.set(user, (h = `${common}Authorization: Bearer ${opts.tokenOf(user)}\r\n`));
    return h;
  };
  const call = async (path: string, user: number, body: string): Promise<Record<string, unknown>> => {
    const res = await client.post(path, headers(user), body);
    let reply: Record<string, unknown>;
    try {
      const raw = res.contentEncoding === "gzip" ? gunzipSync(res.body) : res.body;
      reply = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    } catch {
      throw new OpError(`http_${res.status}`, "reply is not JSON");
    }
    if (res.status === 200) return reply;
    throw new OpError(typeof reply.code === "string" ? reply.code : `http_${res.status}`, String(reply.message ?? ""));
  };
  return {
    name: "chirp",
    async run(op) {
      switch (op.kind) {
        case "home":
          await call(`${TIMELINE}GetHomeTimeline`, op.user, `{"pageSize":${HOME_PAGE}}`);
          return 1;
        case "user": {
          const userId = opts.userIdOf(op.author).toString();
          if (op.offset === 0) {
            await call(`${TIMELINE}GetUserTimeline`, op.viewer, JSON.stringify({ userId, pageSize: USER_PAGE }));
            return 1;
          }
          const skip = await call(`${TIMELINE}GetUserTimeline`, op.viewer, JSON.stringify({ userId, pageSize: Math.min(op.offset, MAX_PAGE) }));
          const token = typeof skip.nextPageToken === "string" ? skip.nextPageToken : "";
          if (token === "") return 1;
          await call(`${TIMELINE}GetUserTimeline`, op.viewer, JSON.stringify({ userId, pageSize: USER_PAGE, pageToken: token }));
          return 2;
        }
        case "compose":
          await call(`${TWEET}PostTweet`, op.user, JSON.stringify({ text: op.text }));
          return 1;
        case "repost":
          await call(`${TWEET}Repost`, op.user, JSON.stringify({ tweetId: op.tweet }));
          return 1;
        case "reply":
          await call(`${TWEET}PostTweet`, op.user, JSON.stringify({ text: op.text, replyToTweetId: op.tweet }));
          return 1;
      }
    },
    close: () => client.close(),
  };
}

/** connect-node's generated clients with the binary format (`--binary`). */
function createChirpProtoTarget(opts: { gatewayUrl: string; tokenOf: (user: number) => string; userIdOf: (user: number) => bigint; timeoutMs: number }): Target {
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const transport = createConnectTransport({ baseUrl: opts.gatewayUrl, httpVersion: "1.1", useBinaryFormat: true, nodeOptions: { agent } });
  const timeline: Client<typeof TimelineService> = createClient(TimelineService, transport);
  const tweets: Client<typeof TweetService> = createClient(TweetService, transport);
  const as = (user: number) => ({ headers: { authorization: `Bearer ${opts.tokenOf(user)}` }, timeoutMs: opts.timeoutMs });
  return {
    name: "chirp",
    async run(op) {
      switch (op.kind) {
        case "home":
          await timeline.getHomeTimeline({ pageSize: HOME_PAGE }, as(op.user));
          return 1;
        case "user": {
          const userId = opts.userIdOf(op.author);
          if (op.offset === 0) {
            await timeline.getUserTimeline({ userId, pageSize: USER_PAGE }, as(op.viewer));
            return 1;
          }
          const skip = await timeline.getUserTimeline({ userId, pageSize: Math.min(op.offset, MAX_PAGE) }, as(op.viewer));
          if (skip.nextPageToken === "") return 1;
          await timeline.getUserTimeline({ userId, pageSize: USER_PAGE, pageToken: skip.nextPageToken }, as(op.viewer));
          return 2;
        }
        case "compose":
          await tweets.postTweet({ text: op.text }, as(op.user));
          return 1;
        case "repost":
          await tweets.repost({ tweetId: BigInt(op.tweet) }, as(op.user));
          return 1;
        case "reply":
          await tweets.postTweet({ text: op.text, replyToTweetId: BigInt(op.tweet) }, as(op.user));
          return 1;
      }
    },
    close: () => agent.destroy(),
  };
}

/** The floor server's client: one POST per op with the op as JSON (the server does the calls' work). */
export function createFloorTarget(opts: { port: number; timeoutMs: number }): Target {
  const client = new KeepAliveClient({ host: "127.0.0.1", port: opts.port, timeoutMs: opts.timeoutMs });
  const post = async (body: string): Promise<number> => {
    const res = await client.post("/op", "Content-Type: application/json\r\n", body);
    if (res.status !== 200) throw new OpError(`http_${res.status}`, res.body.toString("utf8", 0, 200));
    return (JSON.parse(res.body.toString("utf8")) as { calls: number }).calls;
  };
  return {
    name: "floor",
    run: (op) => post(JSON.stringify(op)),
    close: () => client.close(),
  };
}
