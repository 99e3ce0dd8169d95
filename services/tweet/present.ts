import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { TweetSchema, type Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { parseId } from "../../lib/ids.js";
import type { CachedTweet, TweetCache } from "../../lib/tweet-cache.js";
import type { TweetRow } from "./store.js";

const UINT32_MAX = 0xffff_ffff;

/**
 * The viewer-independent part of a tweet (what the cache holds): no author,
 * no media, liked_by_viewer false. createTime is the Snowflake id's time,
 * which is also what create_time stores.
 */
export function presentTweetCore(row: TweetRow): Tweet {
  return create(TweetSchema, {
    id: row.id,
    authorId: row.authorId,
    text: row.text,
    createTime: timestampFromMs(parseId(row.id).timeMs),
    likeCount: Math.min(row.likeCount, UINT32_MAX),
    mediaIds: [...row.mediaIds],
    ...(row.latitude === null || row.longitude === null ? {} : { location: { latitude: row.latitude, longitude: row.longitude } }),
    hashtags: [...row.hashtags],
    mentions: [...row.mentions],
    replyToTweetId: row.replyToTweetId,
    replyCount: Math.min(row.replyCount, UINT32_MAX),
    quoteCount: Math.min(row.quoteCount, UINT32_MAX),
    quoteTweetId: row.quoteTweetId,
    repostCount: Math.min(row.repostCount, UINT32_MAX),
    repostOfTweetId: row.repostOfTweetId,
    urls: [...row.urls],
  });
}

/** After a committed change to `row`: the cache holds its new version before this resolves (Unavailable otherwise). */
export async function publishRow(cache: TweetCache | undefined, row: TweetRow): Promise<void> {
  if (cache === undefined) return;
  const entry: CachedTweet = row.deleted ? { kind: "deleted", version: row.version } : { kind: "tweet", version: row.version, tweet: presentTweetCore(row) };
  await cache.publish(row.id, entry);
}
