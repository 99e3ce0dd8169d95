// Fan-out on write, and keeping home lists in line with the graph. Two durable
// consumers, shared by every timeline instance:
//
//   timeline-fanout  TweetCreated: the id into the author's own list and every
//                    follower's list that exists (pipelined batches); for a hot
//                    author, into their recent-tweets list instead.
//                    TweetDeleted: the id out of the same lists.
//   timeline-graph   UserFollowed: the followee's tweets into the follower's list.
//                    UserUnfollowed: the followee's entries out of it.
//                    Both drop the follower's cached following set.
//
// Every step is idempotent (a sorted-set member added or removed again
// changes nothing; edge events apply by version), so redeliveries are harmless.
import type { ConsumedEvent } from "../../lib/events/consumer.js";
import { EVENTS } from "../../lib/events/subjects.js";
import type { Logger } from "../../lib/logger.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import type { TimelineConfig } from "./config.js";
import type { Entry } from "./entries.js";
import type { FollowingCache } from "./following.js";
import { KEYS, type TimelineLists } from "./lists.js";
import type { TimelineMetrics } from "./metrics.js";
import { NO_CURSOR, type AuthorTweets } from "./author-tweets.js";

export const FANOUT_DURABLE = "timeline-fanout";
export const GRAPH_DURABLE = "timeline-graph";
/** The consumer's filter is chirp.tweet.v1.*: likes are acked unread. */
export const FANOUT_EVENTS = [EVENTS.tweetCreated, EVENTS.tweetDeleted] as const;
export const GRAPH_EVENTS = [EVENTS.userFollowed, EVENTS.userUnfollowed] as const;

const FOLLOWER_PAGE = 5000;
/** What the list scripts answer for a list whose build is in progress. */
const BEING_BUILT = -3;

export interface FanOut {
  onTweetEvent(event: ConsumedEvent<(typeof FANOUT_EVENTS)[number]>): Promise<void>;
  onGraphEvent(event: ConsumedEvent<(typeof GRAPH_EVENTS)[number]>): Promise<void>;
}

export function createFanOut(deps: {
  lists: TimelineLists;
  following: FollowingCache;
  authorTweets: AuthorTweets;
  clients: MeshClients;
  config: TimelineConfig;
  metrics: TimelineMetrics;
  log: Logger;
}): FanOut {
  const { lists, following, authorTweets, clients, config, metrics: m } = deps;
  const cap = config.maxEntries;

  /**
   * Calls `each` with every page of the author's follower ids, the next page
   * fetched while the current one is handled. `each` returning false stops.
   */
  const forEachFollowerPage = async (authorId: bigint, each: (ids: bigint[], seen: number) => Promise<boolean>): Promise<void> => {
    const fetch = (pageToken: string) => clients.graph.listFollowerIds({ userId: authorId, pageSize: FOLLOWER_PAGE, pageToken });
    let page = await fetch("");
    let seen = 0;
    for (;;) {
      const next = page.nextPageToken === "" ? undefined : fetch(page.nextPageToken);
      // A rejected prefetch is awaited below; until then it must not count as unhandled.
      next?.catch(() => {});
      seen += page.userIds.length;
      if (!(await each(page.userIds, seen)) || next === undefined) return;
      page = await next;
    }
  };

  /**
   * One pipeline at a time per event: a burst of tweets then queues at most
   * (handlers running) x (batch) commands in Redis, ahead of the reads that
   * share it, instead of whole follower lists.
   */
  const inBatches = async (ids: readonly bigint[], run: (keys: string[]) => Promise<void>): Promise<void> => {
    for (let i = 0; i < ids.length; i += config.fanOutBatch) await run(ids.slice(i, i + config.fanOutBatch).map(KEYS.home));
  };

  const created = async (entry: Entry, publishTime: Date): Promise<void> => {
    const { authorId } = entry;
    // The author's own home, and their recent-tweets list (user timelines and
    // hot authors' merges read it), where each is built; whether the author is
    // hot is asked in the same round trip.
    const [, , isHot] = await Promise.all([
      lists.addToEach([KEYS.home(authorId)], entry, cap),
      lists.addToEach([KEYS.recent(authorId)], entry, config.recentEntries),
      lists.isHot(authorId),
    ]);
    const hot = async (): Promise<void> => {
      m.fanOutTweets.inc({ path: "hot" });
    };
    // Once hot, always hot (while Redis keeps the set): its tweets were never
    // fanned out, so fanning out again would leave the earlier ones missing.
    if (isHot) return hot();
    let becameHot = false;
    await forEachFollowerPage(authorId, async (ids, seen) => {
      if (seen > config.hotFollowers) {
        // The pages before this one were fanned out: harmless, they are merged once at read time.
        await lists.markHot(authorId);
        becameHot = true;
        return false;
      }
      let delivered = 0;
      await inBatches(ids, async (keys) => {
        delivered += await lists.addToEach(keys, entry, cap);
      });
      m.fanOutDeliveries.inc({ result: "delivered" }, delivered);
      m.fanOutDeliveries.inc({ result: "skipped" }, ids.length - delivered);
      return true;
    });
    if (becameHot) return hot();
    m.fanOutTweets.inc({ path: "fanned_out" });
    m.fanOutLag.observe(Math.max(0, Date.now() - publishTime.getTime()) / 1000);
  };

  const deleted = async (entry: Entry): Promise<void> => {
    await lists.removeFromEach([KEYS.home(entry.authorId), KEYS.recent(entry.authorId)], entry);
    // A hot author's tweets are in no follower's list (bar the few fanned out
    // before it was found hot); reads drop deleted tweets at hydration anyway.
    if (await lists.isHot(entry.authorId)) return;
    await forEachFollowerPage(entry.authorId, async (ids) => {
      await inBatches(ids, (keys) => lists.removeFromEach(keys, entry));
      return true;
    });
  };

  /** The followee's tweets into the follower's list, if the follower has one: at most a list's worth, newest first. */
  const followed = async (followerId: bigint, followeeId: bigint, version: bigint): Promise<void> => {
    if ((await lists.redis.exists(KEYS.home(followerId))) === 0) return;
    const entries = await authorTweets.entries(followeeId, NO_CURSOR, cap, { primary: true });
    const result = await lists.mergeAuthor(followerId, followeeId, version, entries, entries.length === cap ? entries[cap - 1]!.id : undefined, cap, config.inactiveMs);
    if (result === BEING_BUILT) throw new Error("home list being built; the follow is applied on a retry");
  };

  return {
    async onTweetEvent(event) {
      if (event.subject === EVENTS.tweetCreated.subject) {
        const { tweetId: id, authorId, repostOfTweetId, repostOfAuthorId } = event.message;
        // A repost's entry carries its original (entries.ts); an event without the original's author makes a plain entry.
        const original = repostOfTweetId !== 0n && repostOfAuthorId !== 0n ? { id: repostOfTweetId, authorId: repostOfAuthorId } : undefined;
        await created(original === undefined ? { id, authorId } : { id, authorId, original }, event.publishTime);
      } else {
        await deleted({ id: event.message.tweetId, authorId: event.message.authorId });
      }
    },

    async onGraphEvent(event) {
      const { followerId, followeeId, edgeVersion } = event.message;
      await following.invalidate(followerId);
      if (event.subject === EVENTS.userFollowed.subject) await followed(followerId, followeeId, edgeVersion);
      else if ((await lists.removeAuthor(followerId, followeeId, edgeVersion, config.inactiveMs)) === BEING_BUILT) {
        // The build may have read whom the user follows before this unfollow: apply it once the build is done.
        throw new Error("home list being built; the unfollow is applied on a retry");
      }
    },
  };
}
