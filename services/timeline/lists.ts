// The Redis side of timelines. Key layout (services/timeline/README.md):
//
//   chirp:tl:home:{<user>}          ZSET  the user's home timeline: entries (entries.ts) scored by
//                                         millisecond, plus one sentinel at score 0. TTL: the
//                                         inactivity period, renewed by every read of it.
//   chirp:tl:home:{<user>}:edges    HASH  followee -> highest follow/unfollow edge version applied
//   chirp:tl:recent:{<author>}      ZSET  a hot author's newest tweets, same layout as a home list
//   chirp:tl:following:{<user>}     SET   the ids the user follows, plus "*" (present once built)
//   chirp:tl:following:{<user>}:lease     the token of the build in progress (see following.ts)
//   chirp:tl:hot                    SET   authors found above the follower threshold (no TTL)
//
// The sentinel of a list is "b" while it is being built, then "g<floor, 20
// digits>": the list holds every entry with id >= floor, so a floor of 0
// means it holds them all and a read needs no MySQL. Older entries are read
// from MySQL. Every write is a script that keeps the sentinel at rank 0 and
// the newest `cap` entries; a trim that drops entries raises the floor to the
// lowest one kept. (A list written before floors rose on trims has an "f"
// sentinel: it is read as holding every entry with id >= max(floor, its
// lowest entry).) Fan-out writes only into a list that exists, so a user
// whose list expired (or was never read, or was flushed) costs fan-out
// nothing until their next read rebuilds it.
import type { ChainableCommander, Redis } from "ioredis";
import { parseRelations, RELATION_KEYS, type Relations } from "../../lib/relations.js";
import { entryMember, entryScore, maxId, memberPrefix, padId, parseMember, type Entry } from "./entries.js";
import { defineScript } from "../../lib/redis-scripts.js";

/** A recent list's key is this, the author, and "}" (the home script builds the hot authors' keys too). */
const RECENT_PREFIX = "chirp:tl:recent:{";

export const KEYS = {
  home: (userId: bigint): string => `chirp:tl:home:{${userId}}`,
  edges: (userId: bigint): string => `chirp:tl:home:{${userId}}:edges`,
  recent: (authorId: bigint): string => `${RECENT_PREFIX}${authorId}}`,
  following: (userId: bigint): string => `chirp:tl:following:{${userId}}`,
  followingLease: (userId: bigint): string => `chirp:tl:following:{${userId}}:lease`,
  hot: "chirp:tl:hot",
} as const;

const BUILDING = "b";
const floorSentinel = (floor: bigint): string => `g${padId(floor)}`;

// Lua shared by the scripts: whether a head is a built list's sentinel, and
// the trim to `cap` entries that raises the floor to the lowest entry kept.
const LIST_LUA = `
local function built(head)
  local kind = string.sub(head, 1, 1)
  return kind == 'g' or kind == 'f'
end
-- Up to limit entries with score <= max, newest first, after the sentinel and
-- the lowest entry (or ""); {} when the list is missing. ttl > 0 renews a built list.
local function page(key, max, limit, ttl)
  local head = redis.call('ZRANGE', key, 0, 1)
  if #head == 0 then return {} end
  if ttl > 0 and built(head[1]) then redis.call('PEXPIRE', key, ttl) end
  local p = redis.call('ZRANGE', key, max, '(0', 'BYSCORE', 'REV', 'LIMIT', 0, limit)
  table.insert(p, 1, head[2] or '')
  table.insert(p, 1, head[1])
  return p
end
local function trim(key, cap)
  if redis.call('ZREMRANGEBYRANK', key, 1, -(cap + 1)) == 0 then return end
  local head = redis.call('ZRANGE', key, 0, 1)
  if #head < 2 or string.sub(head[1], 1, 1) ~= 'g' then return end
  local low = string.sub(head[2], 1, 20)
  if low > string.sub(head[1], 2) then
    redis.call('ZREM', key, head[1])
    redis.call('ZADD', key, 0, 'g' .. low)
  end
end`;

export interface HomeRead {
  readonly page: ListPage;
  /** The caller's blocks and mutes (lib/relations.ts); undefined when their set is not cached. */
  readonly relations: Relations | undefined;
  /** What the caller's cached following set says; undefined when it is not cached. */
  readonly following:
    | {
        /** The authors of the page's entries (the caller left out) that the caller still follows. */
        readonly followed: ReadonlySet<bigint>;
        /** The hot authors the caller follows (the caller left out), each with its recent list's page. */
        readonly hot: ReadonlyArray<{ readonly authorId: bigint; readonly page: ListPage }>;
      }
    | undefined;
}

/** A page read from a list. */
export type ListPage =
  | { readonly state: "missing" | "building" }
  | {
      readonly state: "built";
      /** Newest first, id < the page's bound. */
      readonly entries: Entry[];
      /** Every entry of the list with id >= floor (and < the bound) is in `entries`. */
      readonly floor: bigint;
    };

// Fan-out's writes: one script call per batch of lists, not one per list, so
// a batch costs Redis one script invocation and Node one command (an EVALSHA
// per list cost Redis about a third more, and Node about five times as much).
// The lists of a batch belong to different users, so their keys span slots:
// Chirp's Redis is one instance; Redis Cluster would need each batch split by
// slot (CLUSTER KEYSLOT) into calls of their own. A batch runs atomically, so
// the caller's batch size bounds how long one blocks the reads behind it.

// KEYS: lists. ARGV: score, member, cap. How many lists took the entry: each
// that exists gets it and is trimmed; a missing one is skipped, not created.
const ADD_EACH_LUA = `${LIST_LUA}
local cap = tonumber(ARGV[3])
local added = 0
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', key, ARGV[1], ARGV[2])
    trim(key, cap)
    added = added + 1
  end
end
return added`;

// KEYS: lists (missing ones are fine). ARGV: the entry's score, its members'
// prefix. Removes every member of that id from each (a repost's carries its
// original: a remover need not know it).
const REMOVE_EACH_LUA = `
for _, key in ipairs(KEYS) do
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, ARGV[1], ARGV[1])) do
    if string.sub(m, 1, #ARGV[2]) == ARGV[2] then redis.call('ZREM', key, m) end
  end
end
return 0`;

// KEYS[1] list. ARGV: max score ("+inf" or a millisecond), limit, ttl ms (0: leave it).
// {} when missing; else {sentinel, lowest entry or "", entries newest first...}.
const READ_LUA = `${LIST_LUA}
return page(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]))`;

// The whole of a home read's Redis part, in one script (one round trip).
// KEYS[1] home list, KEYS[2] following set, KEYS[3] hot set, KEYS[4] the
// caller's blocks and mutes (lib/relations.ts). ARGV: max score, limit, ttl
// ms, the caller, the recent-list key prefix. {page, relations} when the
// following set is not cached; else {page, relations, followed authors among
// the page's, hot followed authors, then each of their recent pages}. The
// relations set's members go back whole (a user's blocks and mutes are few;
// "*" says it is built): the reader drops the entries of blocked and muted
// users, and after hydration the reposted or quoted tweets of theirs. The hot authors'
// recent lists are found in the script, so they are not among KEYS: Chirp's
// Redis is one instance (the SINTER with the hot set spans slots too), and
// Redis Cluster would need the hot lists read in a second step.
const HOME_LUA = `${LIST_LUA}
local home = page(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]))
local rel = redis.call('SMEMBERS', KEYS[4])
if redis.call('EXISTS', KEYS[2]) == 0 then return {home, rel} end
local authors, seen, followed = {}, {}, {}
for i = 3, #home do
  local author = string.match(home[i], ':(%d+)$')
  if author and author ~= ARGV[4] and not seen[author] then
    seen[author] = true
    authors[#authors + 1] = author
  end
end
if #authors > 0 then
  local flags = redis.call('SMISMEMBER', KEYS[2], unpack(authors))
  for i, author in ipairs(authors) do
    if flags[i] == 1 then followed[#followed + 1] = author end
  end
end
local hot = {}
for _, id in ipairs(redis.call('SINTER', KEYS[2], KEYS[3])) do
  if id ~= ARGV[4] then hot[#hot + 1] = id end
end
local out = {home, rel, followed, hot}
for _, id in ipairs(hot) do out[#out + 1] = page(ARGV[5] .. id .. '}', ARGV[1], ARGV[2], 0) end
return out`;

// KEYS[1] list. ARGV: ttl ms for the placeholder. 0 if already built, 1 if the caller should build.
const BEGIN_BUILD_LUA = `${LIST_LUA}
local head = redis.call('ZRANGE', KEYS[1], 0, 0)
if #head > 0 and built(head[1]) then return 0 end
if #head == 0 then
  redis.call('ZADD', KEYS[1], 0, '${BUILDING}')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1`;

// KEYS[1] list. ARGV: floor sentinel, cap, ttl ms, then score, member pairs.
// 0 if the list vanished since the build began (its fan-outs went nowhere: the build is void).
const FINISH_BUILD_LUA = `${LIST_LUA}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, 0)
redis.call('ZADD', KEYS[1], 0, ARGV[1])
for i = 4, #ARGV, 1000 do
  redis.call('ZADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
trim(KEYS[1], tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

// Edge versions: a follow or unfollow applies only if newer than the last one
// applied to this list (0: an event without a version, always applied).
const NEWER_EDGE = `${LIST_LUA}
local function newer_edge(edges, who, version, ttl)
  if version == '0' then return true end
  local v = tonumber(redis.call('HGET', edges, who) or '0')
  if v >= tonumber(version) then return false end
  redis.call('HSET', edges, who, version)
  redis.call('PEXPIRE', edges, ttl)
  return true
end`;

// KEYS[1] list, KEYS[2] its edges. ARGV: author, edge version, ttl ms.
// -1 no list, -3 a list being built, -2 stale event, else the number of entries removed.
const REMOVE_AUTHOR_LUA = `${NEWER_EDGE}
local head = redis.call('ZRANGE', KEYS[1], 0, 0)
if #head == 0 then return -1 end
if not built(head[1]) then return -3 end
if not newer_edge(KEYS[2], ARGV[1], ARGV[2], ARGV[3]) then return -2 end
local suffix = ':' .. ARGV[1]
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 1, -1)) do
  if string.sub(m, -#suffix) == suffix then
    redis.call('ZREM', KEYS[1], m)
    n = n + 1
  end
end
return n`;

// KEYS[1] list, KEYS[2] its edges. ARGV: author, edge version, ttl ms, cap,
// the author's coverage floor ("" if all of their tweets are given), then
// score, member pairs. -1 no list, -3 a list being built, -2 stale event, else 1.
const MERGE_AUTHOR_LUA = `${NEWER_EDGE}
local head = redis.call('ZRANGE', KEYS[1], 0, 0)
if #head == 0 then return -1 end
if not built(head[1]) then return -3 end
if not newer_edge(KEYS[2], ARGV[1], ARGV[2], ARGV[3]) then return -2 end
if ARGV[5] ~= '' and ARGV[5] > string.sub(head[1], 2) then
  redis.call('ZREM', KEYS[1], head[1])
  redis.call('ZADD', KEYS[1], 0, string.sub(head[1], 1, 1) .. ARGV[5])
end
for i = 6, #ARGV, 1000 do
  redis.call('ZADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
trim(KEYS[1], tonumber(ARGV[4]))
return 1`;

type Arg = string | number;

interface Scripts {
  /** Scripts without a fixed key count take it first: (number of keys, ...keys, ...args). */
  chirpTlAddEach(numKeys: number, ...keysThenArgs: Arg[]): Promise<number>;
  chirpTlRemoveEach(numKeys: number, ...keysThenArgs: Arg[]): Promise<number>;
  chirpTlRead(key: string, maxScore: string, limit: number, ttlMs: number): Promise<string[]>;
  chirpTlHome(home: string, following: string, hot: string, relations: string, maxScore: string, limit: number, ttlMs: number, caller: string, recentPrefix: string): Promise<string[][]>;
  chirpTlBeginBuild(key: string, ttlMs: number): Promise<number>;
  chirpTlFinishBuild(key: string, ...args: Arg[]): Promise<number>;
  chirpTlRemoveAuthor(key: string, edges: string, author: string, version: string, ttlMs: number): Promise<number>;
  chirpTlMergeAuthor(key: string, edges: string, ...args: Arg[]): Promise<number>;
}

type PipelineScripts = ChainableCommander & {
  chirpTlRead(key: string, maxScore: string, limit: number, ttlMs: number): ChainableCommander;
};

/** How long a list may stay "being built" (a builder that died leaves it to expire). */
const BUILD_PLACEHOLDER_MS = 60_000;

export interface TimelineLists {
  readonly redis: Redis;
  /** Adds `entry` to each of `keys` that exists, in one script call; how many took it. */
  addToEach(keys: readonly string[], entry: Entry, cap: number): Promise<number>;
  /** Removes the entry (by its id: whatever its member carries) from each of `keys` (missing keys are fine), in one script call. */
  removeFromEach(keys: readonly string[], entry: Entry): Promise<void>;
  /** Up to `limit` entries with id < before (undefined: the newest), renewing the TTL of a built list when ttlMs > 0. */
  readPage(key: string, before: bigint | undefined, limit: number, ttlMs: number): Promise<ListPage>;
  /** Several lists' pages in one pipeline (the hot authors of a home read). */
  readPages(keys: readonly string[], before: bigint | undefined, limit: number): Promise<ListPage[]>;
  /**
   * One round trip for a home read: the page (renewing the list's TTL: the
   * read is the user's activity), which of its authors the caller still
   * follows, and the hot authors they follow with their recent lists' pages
   * (from the cached following set; `following` undefined when it is not cached).
   */
  readHome(userId: bigint, before: bigint | undefined, limit: number, ttlMs: number): Promise<HomeRead>;
  /** Whether `authorId` was found above the follower threshold. */
  isHot(authorId: bigint): Promise<boolean>;
  markHot(authorId: bigint): Promise<void>;
  /** False when the list is already built; otherwise it exists from now on (placeholder), so fan-out lands in it while the caller reads MySQL. */
  beginBuild(key: string): Promise<boolean>;
  /** Stores a build; false if the list vanished meanwhile (the build is void: fan-outs may have been skipped). */
  finishBuild(key: string, entries: readonly Entry[], floor: bigint, cap: number, ttlMs: number): Promise<boolean>;
  /** Unfollow: one author's entries out of a built list. -1 no list, -3 being built, -2 stale (an older event), else how many. */
  removeAuthor(userId: bigint, authorId: bigint, edgeVersion: bigint, ttlMs: number): Promise<number>;
  /** Follow: one author's entries into a built list; `authorFloor`: below it the author's tweets were not read. -1, -2, -3 as removeAuthor. */
  mergeAuthor(
    userId: bigint,
    authorId: bigint,
    edgeVersion: bigint,
    entries: readonly Entry[],
    authorFloor: bigint | undefined,
    cap: number,
    ttlMs: number,
  ): Promise<number>;
}

export function createTimelineLists(redis: Redis): TimelineLists {
  // No numberOfKeys: a call passes its batch's size first.
  defineScript(redis, "chirpTlAddEach", { lua: ADD_EACH_LUA });
  defineScript(redis, "chirpTlRemoveEach", { lua: REMOVE_EACH_LUA });
  defineScript(redis, "chirpTlRead", { numberOfKeys: 1, lua: READ_LUA });
  defineScript(redis, "chirpTlHome", { numberOfKeys: 4, lua: HOME_LUA });
  defineScript(redis, "chirpTlBeginBuild", { numberOfKeys: 1, lua: BEGIN_BUILD_LUA });
  defineScript(redis, "chirpTlFinishBuild", { numberOfKeys: 1, lua: FINISH_BUILD_LUA });
  defineScript(redis, "chirpTlRemoveAuthor", { numberOfKeys: 2, lua: REMOVE_AUTHOR_LUA });
  defineScript(redis, "chirpTlMergeAuthor", { numberOfKeys: 2, lua: MERGE_AUTHOR_LUA });
  const scripts = redis as unknown as Scripts;
  const pairs = (entries: readonly Entry[]): Arg[] => entries.flatMap((e) => [entryScore(e.id), entryMember(e)]);

  return {
    redis,
    async addToEach(keys, entry, cap) {
      if (keys.length === 0) return 0;
      return Number(await scripts.chirpTlAddEach(keys.length, ...keys, entryScore(entry.id), entryMember(entry), cap));
    },

    async removeFromEach(keys, entry) {
      if (keys.length === 0) return;
      await scripts.chirpTlRemoveEach(keys.length, ...keys, entryScore(entry.id), memberPrefix(entry.id));
    },

    async readPage(key, before, limit, ttlMs) {
      return parsePage(await scripts.chirpTlRead(key, maxScore(before), limit, ttlMs), before, limit);
    },

    async readPages(keys, before, limit) {
      if (keys.length === 0) return [];
      const p = redis.pipeline() as PipelineScripts;
      for (const key of keys) p.chirpTlRead(key, maxScore(before), limit, 0);
      return ((await p.exec()) ?? []).map(([err, result]) => {
        if (err) throw err;
        return parsePage(result as string[], before, limit);
      });
    },

    async readHome(userId, before, limit, ttlMs) {
      const reply = await scripts.chirpTlHome(
        KEYS.home(userId),
        KEYS.following(userId),
        KEYS.hot,
        RELATION_KEYS.set(userId),
        maxScore(before),
        limit,
        ttlMs,
        String(userId),
        RECENT_PREFIX,
      );
      const [home = [], rel = [], followed, hot = [], ...hotPages] = reply as string[][];
      const page = parsePage(home, before, limit);
      const relations = parseRelations(rel);
      if (followed === undefined) return { page, relations, following: undefined };
      return {
        page,
        relations,
        following: {
          followed: new Set(followed.map((id) => BigInt(id))),
          hot: hot.map((id, i) => ({ authorId: BigInt(id), page: parsePage(hotPages[i] ?? [], before, limit) })),
        },
      };
    },

    async isHot(authorId) {
      return (await redis.sismember(KEYS.hot, String(authorId))) === 1;
    },

    async markHot(authorId) {
      await redis.sadd(KEYS.hot, String(authorId));
    },

    async beginBuild(key) {
      return (await scripts.chirpTlBeginBuild(key, BUILD_PLACEHOLDER_MS)) === 1;
    },

    async finishBuild(key, entries, floor, cap, ttlMs) {
      return (await scripts.chirpTlFinishBuild(key, floorSentinel(floor), cap, ttlMs, ...pairs(entries))) === 1;
    },

    async removeAuthor(userId, authorId, edgeVersion, ttlMs) {
      return scripts.chirpTlRemoveAuthor(KEYS.home(userId), KEYS.edges(userId), String(authorId), String(edgeVersion), ttlMs);
    },

    async mergeAuthor(userId, authorId, edgeVersion, entries, authorFloor, cap, ttlMs) {
      return scripts.chirpTlMergeAuthor(
        KEYS.home(userId),
        KEYS.edges(userId),
        String(authorId),
        String(edgeVersion),
        ttlMs,
        cap,
        authorFloor === undefined ? "" : padId(authorFloor),
        ...pairs(entries),
      );
    },
  };
}

function maxScore(before: bigint | undefined): string {
  return before === undefined ? "+inf" : String(entryScore(before));
}

/** Whether a list's rank-0 member says it is built (tools that look at lists directly). */
export function isBuiltSentinel(head: string | undefined): boolean {
  return head !== undefined && (head.startsWith("g") || head.startsWith("f"));
}

/** A page as the read script returned it; see ListPage. */
export function parsePage(reply: readonly string[], before: bigint | undefined, limit: number): ListPage {
  const [sentinel, lowest, ...members] = reply;
  if (sentinel === undefined) return { state: "missing" };
  if (!isBuiltSentinel(sentinel)) return { state: "building" };
  const exact = sentinel.startsWith("g");
  // "g": the sentinel's floor is exact; "f" (written before trims raised it): not below the lowest entry.
  let floor = exact ? BigInt(sentinel.slice(1)) : maxId(BigInt(sentinel.slice(1)), parseMember(lowest ?? "")?.id ?? 0n);
  const all = members.flatMap((m) => {
    const e = parseMember(m);
    return e === undefined ? [] : [e];
  });
  // A full page stops somewhere: below its last entry nothing was read.
  const lastRead = all.at(-1);
  if (members.length >= limit && lastRead !== undefined) floor = maxId(floor, lastRead.id);
  const entries = before === undefined ? all : all.filter((e) => e.id < before);
  return { state: "built", entries, floor };
}
