// GET /account/export (issue 21, item 4): everything Chirp keeps about the
// signed-in user, as one JSON document: the profile (with the email), their
// tweets (replies and quotes included) and reposts, likes, follows both ways,
// blocks, mutes and the media attached to their tweets. Read through the same
// public RPCs a client would call, page by page, each vouched for as the
// caller (vouch.ts), so the services' own rules apply (a blocked user's
// tweets are not in the likes, say) and nothing here reads a table.
import type { DescMethod, DescService, Message } from "@bufbuild/protobuf";
import { toJson, type DescMessage } from "@bufbuild/protobuf";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { GraphService } from "../gen/chirp/graph/v1/graph_service_pb.js";
import { TimelineService } from "../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetSchema } from "../gen/chirp/tweet/v1/tweet_pb.js";
import { TweetService } from "../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserSchema } from "../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../gen/chirp/user/v1/user_service_pb.js";
import { REQUEST_ID_HEADER } from "../lib/rpc/metadata.js";
import type { Vouching } from "./vouch.js";

/** Page size of every list read (the largest the RPCs take). */
const PAGE = 100;
/** Pages read per list at most: an export of a very large account is cut, and says so. */
const MAX_PAGES = 1000;

export interface AccountExportDeps {
  /** The transport to the service that implements `service` (the gateway's forwarding transports). */
  readonly transportFor: (service: DescService) => Transport;
  readonly vouch: Vouching;
  readonly timeoutMs: number;
}

/** The caller's data as a JSON-ready object. */
export async function exportAccount(deps: AccountExportDeps, caller: { userId: string; sessionId: string }): Promise<Record<string, unknown>> {
  const userId = BigInt(caller.userId);
  /** Headers for one call of `method` as the caller: its own request id and assertion. */
  const as = (method: DescMethod): { headers: Headers; timeoutMs: number } => {
    const headers = new Headers({ [REQUEST_ID_HEADER]: randomUUID() });
    deps.vouch(headers, caller.userId, caller.sessionId, method, headers.get(REQUEST_ID_HEADER)!, deps.timeoutMs);
    return { headers, timeoutMs: deps.timeoutMs };
  };
  const users: Client<typeof UserService> = createClient(UserService, deps.transportFor(UserService));
  const graph: Client<typeof GraphService> = createClient(GraphService, deps.transportFor(GraphService));
  const tweets: Client<typeof TweetService> = createClient(TweetService, deps.transportFor(TweetService));
  const timelines: Client<typeof TimelineService> = createClient(TimelineService, deps.transportFor(TimelineService));
  const truncated: string[] = [];

  /** Every page of a list, in order. */
  const all = async <T>(name: string, page: (token: string) => Promise<{ items: T[]; next: string }>): Promise<T[]> => {
    const out: T[] = [];
    let token = "";
    for (let n = 0; n < MAX_PAGES; n++) {
      const { items, next } = await page(token);
      out.push(...items);
      if (next === "") return out;
      token = next;
    }
    truncated.push(name);
    return out;
  };
  const json = <D extends DescMessage>(schema: D, m: Message & object) => toJson(schema, m as never, { alwaysEmitImplicit: true });
  const userJson = (u: Parameters<typeof json>[1]) => json(UserSchema, u);
  const tweetJson = (t: Parameters<typeof json>[1]) => json(TweetSchema, t);

  const [profile, timeline, likes, following, followers, blocked, muted] = await Promise.all([
    users.getUser({ lookup: { case: "userId", value: userId } }, as(UserService.method.getUser)),
    all("tweets", async (pageToken) => {
      const r = await timelines.getUserTimeline({ userId, pageSize: PAGE, pageToken }, as(TimelineService.method.getUserTimeline));
      return { items: r.tweets, next: r.nextPageToken };
    }),
    all("likes", async (pageToken) => {
      const r = await tweets.listLikedTweets({ userId, pageSize: PAGE, pageToken }, as(TweetService.method.listLikedTweets));
      return { items: r.tweets, next: r.nextPageToken };
    }),
    all("following", async (pageToken) => {
      const r = await graph.listFollowing({ userId, pageSize: PAGE, pageToken }, as(GraphService.method.listFollowing));
      return { items: r.users, next: r.nextPageToken };
    }),
    all("followers", async (pageToken) => {
      const r = await graph.listFollowers({ userId, pageSize: PAGE, pageToken }, as(GraphService.method.listFollowers));
      return { items: r.users, next: r.nextPageToken };
    }),
    all("blocked", async (pageToken) => {
      const r = await graph.listBlocked({ pageSize: PAGE, pageToken }, as(GraphService.method.listBlocked));
      return { items: r.users, next: r.nextPageToken };
    }),
    all("muted", async (pageToken) => {
      const r = await graph.listMuted({ pageSize: PAGE, pageToken }, as(GraphService.method.listMuted));
      return { items: r.users, next: r.nextPageToken };
    }),
  ]);
  // The user timeline shows a repost as the original tweet with repostId set: those are the reposts.
  const own = timeline.filter((t) => t.repostId === 0n);
  const reposts = timeline.filter((t) => t.repostId !== 0n);
  const media = own.flatMap((t) => t.mediaIds.map((id) => ({ id: String(id), tweetId: String(t.id), url: `/media/${id}` })));
  return {
    exportTime: new Date().toISOString(),
    format: "chirp-account-export/1",
    ...(truncated.length > 0 ? { truncated } : {}),
    profile: userJson(profile.user!),
    tweets: own.map(tweetJson),
    reposts: reposts.map((t) => ({ repostId: String(t.repostId), tweet: tweetJson(t) })),
    likes: likes.map(tweetJson),
    following: following.map(userJson),
    followers: followers.map(userJson),
    blocked: blocked.map(userJson),
    muted: muted.map(userJson),
    media,
  };
}
