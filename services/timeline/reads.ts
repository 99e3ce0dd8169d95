// Timeline reads, as skeletons of entries (hydration is the routes' job).
//
// Home: the caller's Redis list (fanned out on write), merged with the
// recent-tweets lists of the hot authors they follow (not fanned out), down to
// the highest floor among them; what the page still lacks comes from MySQL
// below that floor. A missing list is rebuilt from MySQL first. Without Redis
// the whole page comes from MySQL. See services/timeline/README.md.
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "../../lib/logger.js";
import { hides, type RelationCache, type Relations } from "../../lib/relations.js";
import { onBehalfOf, type MeshClients } from "../../lib/rpc/mesh-clients.js";
import type { TimelineConfig } from "./config.js";
import { maxId, newestFirst, type Entry } from "./entries.js";
import { listFollowing, type FollowingCache } from "./following.js";
import { KEYS, type HomeRead, type ListPage, type TimelineLists } from "./lists.js";
import { mergeAuthors } from "./merge.js";
import type { TimelineMetrics } from "./metrics.js";
import { NO_CURSOR, type AuthorTweets } from "./author-tweets.js";

/** One page: entries newest first, and the exclusive bound of the next page (undefined at the end). */
export interface SkeletonPage {
  readonly entries: Entry[];
  readonly next: bigint | undefined;
  /**
   * A home page's reader's blocks and mutes: their entries are already out;
   * hydration drops the reposted tweets of theirs and their quoted tweets.
   */
  readonly relations?: Relations;
}

export interface TimelineReader {
  home(callerId: bigint, before: bigint | undefined, pageSize: number, hctx: HandlerContext): Promise<SkeletonPage>;
  user(userId: bigint, before: bigint | undefined, pageSize: number, primary: boolean): Promise<SkeletonPage>;
  /** Builds the caller's home list from MySQL unless it is built (fan-out tests and benches warm lists this way too). */
  rebuildHome(userId: bigint, hctx?: HandlerContext): Promise<void>;
  /** Builds a hot author's recent-tweets list from MySQL unless it is built. */
  rebuildRecent(authorId: bigint): Promise<void>;
}

/** Read beyond the page a little: entries of the bound's own millisecond that are not below it are dropped after the read. */
const SLACK = 4;

class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
}

/** A Redis step: its failures (not the RPCs' or MySQL's, which are ConnectErrors) mean "serve without Redis". */
async function viaRedis<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw new RedisUnavailableError((err as Error).message, { cause: err });
  }
}

export function createTimelineReader(deps: {
  authorTweets: AuthorTweets;
  lists: TimelineLists | undefined;
  following: FollowingCache | undefined;
  relations: RelationCache;
  clients: MeshClients;
  config: TimelineConfig;
  metrics: TimelineMetrics;
  log: Logger;
}): TimelineReader {
  const { authorTweets, lists, following, relations, clients, config, metrics: m, log } = deps;
  const homeBuilds = new Map<bigint, Promise<void>>();
  const recentBuilds = new Map<bigint, Promise<void>>();
  let redisDownLogged = 0;

  const once = (builds: Map<bigint, Promise<void>>, id: bigint, run: () => Promise<void>): Promise<void> => {
    let p = builds.get(id);
    if (p === undefined) {
      p = run().finally(() => builds.delete(id));
      builds.set(id, p);
    }
    return p;
  };

  const rebuildHome = (userId: bigint, hctx?: HandlerContext): Promise<void> =>
    once(homeBuilds, userId, async () => {
      if (lists === undefined || following === undefined) return;
      const key = KEYS.home(userId);
      // The list exists (as a placeholder) before MySQL is read, so a tweet
      // whose fan-out runs meanwhile lands in it instead of being skipped.
      if (!(await viaRedis(lists.beginBuild(key)))) return;
      const authors = [...(await viaRedis(following.all(userId, hctx))), userId];
      // The primaries: a tweet committed before this read began is in it even
      // if its fan-out already skipped the absent list.
      const merged = await mergeAuthors(authorTweets, { authors, before: NO_CURSOR, want: config.maxEntries, primary: true });
      const stored = await viaRedis(lists.finishBuild(key, merged.entries, merged.floor, config.maxEntries, config.inactiveMs));
      m.rebuilds.inc({ what: "home", result: stored ? "stored" : "void" });
    });

  const rebuildRecent = (authorId: bigint): Promise<void> =>
    once(recentBuilds, authorId, async () => {
      if (lists === undefined) return;
      const key = KEYS.recent(authorId);
      if (!(await viaRedis(lists.beginBuild(key)))) return;
      const cap = config.recentEntries;
      const entries = await authorTweets.entries(authorId, NO_CURSOR, cap, { primary: true });
      const floor = entries.length === cap ? entries[cap - 1]!.id : 0n;
      const stored = await viaRedis(lists.finishBuild(key, entries, floor, cap, config.recentTtlMs));
      m.rebuilds.inc({ what: "recent", result: stored ? "stored" : "void" });
    });

  /** The part of a page below `before` that MySQL gives, for `authors`. */
  const fromMysql = async (authors: Iterable<bigint>, before: bigint, want: number): Promise<{ entries: Entry[]; floor: bigint }> =>
    mergeAuthors(authorTweets, { authors, before, want, primary: false });

  /** Cuts a newest-first run of candidates into a page; `floor`: below it nothing was looked at. */
  const cut = (entries: Entry[], pageSize: number, floor: bigint, rel?: Relations): SkeletonPage => ({
    ...(entries.length > pageSize
      ? { entries: entries.slice(0, pageSize), next: entries[pageSize - 1]!.id }
      : { entries, next: floor === 0n ? undefined : floor }),
    ...(rel === undefined ? {} : { relations: rel }),
  });

  const homeWithoutRedis = async (callerId: bigint, before: bigint | undefined, pageSize: number, hctx: HandlerContext): Promise<SkeletonPage> => {
    const [followed, rel] = await Promise.all([listFollowing(clients, callerId, hctx), relations.get(callerId, onBehalfOf(hctx))]);
    const authors = [...followed.filter((id) => !hides(rel, id)), callerId];
    const merged = await fromMysql(authors, before ?? NO_CURSOR, pageSize + 1);
    m.homePages.inc({ source: "mysql" });
    return cut(merged.entries, pageSize, merged.floor, rel);
  };

  const homeFromRedis = async (
    l: TimelineLists,
    f: FollowingCache,
    callerId: bigint,
    before: bigint | undefined,
    pageSize: number,
    hctx: HandlerContext,
  ): Promise<SkeletonPage | undefined> => {
    const limit = pageSize + 1 + SLACK;
    // One round trip in steady state: the page, which of its authors are still followed, and the hot authors' lists.
    const read = (): Promise<HomeRead> => viaRedis(l.readHome(callerId, before, limit, config.inactiveMs));
    let home = await read();
    if (home.page.state !== "built") {
      await rebuildHome(callerId, hctx);
      home = await read();
      // Built and gone again (a flush mid-build): this page comes from MySQL.
      if (home.page.state !== "built") return undefined;
    }
    if (home.following === undefined) {
      // The following set expired (or a follow event dropped it): cache it and read again.
      await viaRedis(f.ensure(callerId, hctx));
      home = await read();
      // Dropped again at once, or flushed: this page comes from MySQL.
      if (home.page.state !== "built" || home.following === undefined) return undefined;
    }
    const page = home.page as Extract<ListPage, { state: "built" }>;
    // The caller's blocks and mutes were read with the page; built from the graph when not cached.
    const rel = home.relations ?? (await viaRedis(relations.build(callerId, onBehalfOf(hctx))));
    // Entries of authors no longer followed (an unfollow whose removal raced a fan-out) are dropped, and of blocked and muted ones.
    const { followed } = home.following;
    const hot = home.following.hot.filter((h) => !hides(rel, h.authorId));
    const unbuilt = hot.filter((h) => h.page.state !== "built");
    if (unbuilt.length > 0) {
      await Promise.all(unbuilt.map((h) => rebuildRecent(h.authorId)));
      const again = await viaRedis(l.readPages(unbuilt.map((h) => KEYS.recent(h.authorId)), before, limit));
      unbuilt.forEach((h, i) => (hot[hot.indexOf(h)] = { authorId: h.authorId, page: again[i]! }));
    }

    let floor = page.floor;
    const candidates = page.entries.filter((e) => e.authorId === callerId || (followed.has(e.authorId) && !hides(rel, e.authorId)));
    for (const { authorId, page: recent } of hot) {
      if (recent.state !== "built") {
        // Still not built (flushed mid-build): this author's part comes from MySQL below.
        floor = maxId(floor, before ?? NO_CURSOR);
        log.debug({ author: String(authorId) }, "hot author's recent list unavailable; reading MySQL");
        continue;
      }
      candidates.push(...recent.entries);
      floor = maxId(floor, recent.floor);
    }
    const fast = newestFirst(candidates).filter((e) => e.id >= floor);
    if (fast.length > pageSize || floor === 0n) {
      m.homePages.inc({ source: "redis" });
      return cut(fast, pageSize, floor, rel);
    }
    // The lists end above the page's end: the rest from MySQL, below the floor.
    const below = before === undefined || floor < before ? floor : before;
    const authors = (await viaRedis(f.all(callerId, hctx))).filter((id) => !hides(rel, id));
    const deep = await fromMysql([...authors, callerId], below, pageSize - fast.length + 1);
    m.homePages.inc({ source: "redis_mysql" });
    return cut([...fast, ...deep.entries], pageSize, deep.floor, rel);
  };

  /** A user timeline page from the author's recent list, or undefined when the page reaches below what the list holds. */
  const userFromRedis = async (l: TimelineLists, userId: bigint, before: bigint | undefined, pageSize: number): Promise<SkeletonPage | undefined> => {
    const limit = pageSize + 1 + SLACK;
    let [page] = await viaRedis(l.readPages([KEYS.recent(userId)], before, limit));
    if (page!.state !== "built") {
      await rebuildRecent(userId);
      [page] = await viaRedis(l.readPages([KEYS.recent(userId)], before, limit));
      if (page!.state !== "built") return undefined;
    }
    const built = page as Extract<ListPage, { state: "built" }>;
    const entries = newestFirst(built.entries).filter((e) => e.id >= built.floor);
    if (entries.length <= pageSize && built.floor !== 0n) return undefined;
    return cut(entries, pageSize, built.floor);
  };

  return {
    rebuildHome,
    rebuildRecent,

    async home(callerId, before, pageSize, hctx) {
      if (lists === undefined || following === undefined) return homeWithoutRedis(callerId, before, pageSize, hctx);
      try {
        const page = await homeFromRedis(lists, following, callerId, before, pageSize, hctx);
        if (page !== undefined) return page;
      } catch (err) {
        if (!(err instanceof RedisUnavailableError)) throw err;
        // Loud once a minute at most: an outage would otherwise log every read.
        if (Date.now() - redisDownLogged > 60_000) {
          log.warn({ err: err.message }, "redis unavailable: home timelines are read from MySQL");
          redisDownLogged = Date.now();
        }
      }
      return homeWithoutRedis(callerId, before, pageSize, hctx);
    },

    async user(userId, before, pageSize, primary) {
      // Someone else's: the author's recent-tweets list (kept by the fan-out
      // within its latency), down to its floor. One's own (primary: a tweet
      // shows the moment PostTweet returns), and anything below the floor,
      // from MySQL.
      if (!primary && lists !== undefined) {
        try {
          const page = await userFromRedis(lists, userId, before, pageSize);
          if (page !== undefined) return page;
        } catch (err) {
          if (!(err instanceof RedisUnavailableError)) throw err;
        }
      }
      const found = await authorTweets.entries(userId, before ?? NO_CURSOR, pageSize + 1, { primary });
      const entries = found.slice(0, pageSize);
      return { entries, next: found.length > pageSize ? entries.at(-1)!.id : undefined };
    },
  };
}
