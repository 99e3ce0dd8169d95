// The arithmetic of `chirp capacity`: back-of-the-envelope inputs and
// per-call costs in, traffic, storage, bandwidth, Redis memory, shards and
// instances out. Pure: no I/O, so every figure can be checked by hand (and is,
// in capacity.test.ts). Where the per-call costs come from is capacity-figures.ts.

/** What the operator expects; every rate is per daily active user per day. */
export interface CapacityInputs {
  readonly dailyActiveUsers: number;
  /** Registered accounts (follow edges and user rows scale with these). */
  readonly registeredUsers: number;
  readonly tweetsPerUser: number;
  /** Home timeline pages read. */
  readonly readsPerUser: number;
  readonly likesPerUser: number;
  readonly searchesPerUser: number;
  /** Accounts each user follows, on average (so also each author's average follower count). */
  readonly followsPerUser: number;
  /** Share of tweets that carry a photo or a video (0-1). */
  readonly mediaShare: number;
  /** Share of those media that are videos (0-1). */
  readonly videoShare: number;
  readonly photoBytes: number;
  readonly videoBytes: number;
  readonly thumbBytes: number;
  /** Average UTF-8 bytes of a tweet's text. */
  readonly tweetTextBytes: number;
  readonly pageSize: number;
  /** Busiest hour over the daily average. */
  readonly peakFactor: number;
  readonly retentionYears: number;
  /** Copies of every MySQL row: the primary and its replicas. */
  readonly replicationFactor: number;
  /** Entries kept per home timeline list in Redis (CHIRP_TIMELINE_MAX_ENTRIES). */
  readonly timelineEntries: number;
  /** The share of a core an instance may use at peak (0-1); the rest is headroom. */
  readonly targetUtilization: number;
  /** The most data one shard's primary should hold. */
  readonly shardMaxBytes: number;
}

/** Per-call costs and per-server capacities; each is measured (a bench result) or assumed. */
export interface CapacityFigures {
  /** CPU µs for one unary call on a grpc-js server (validation, metrics, handler). */
  readonly rpcServerUs: number;
  /** CPU µs for one outgoing grpc-js call. */
  readonly rpcClientUs: number;
  /** CPU µs for one call served by connect-node (the gateway's side). */
  readonly edgeServerUs: number;
  /** CPU µs in the service per statement through the shard router. */
  readonly dbReadUs: number;
  readonly dbWriteUs: number;
  /** CPU µs per Redis round trip in the service. */
  readonly redisCommandUs: number;
  /** Timeline service time per home timeline written by fan-out. */
  readonly fanOutDeliveryUs: number;
  /** Worker-thread CPU µs to decode and thumbnail one photo. */
  readonly imageProcessUs: number;
  /** CPU µs per MiB of media streamed out (gateway and media service together). */
  readonly mediaServeUsPerMiB: number;
  /** Search index bytes per tweet (docs and postings, one copy, as stored). */
  readonly searchIndexBytesPerTweet: number;
  /** Single-row write transactions per second one semi-sync primary takes. */
  readonly primaryWriteTxPerSec: number;
  /** Point-select rows per second one MariaDB member serves. */
  readonly memberReadRowsPerSec: number;
  /** Events per second one shard's outbox relay publishes. */
  readonly relayEventsPerSec: number;
  /** Redis memory per timeline entry (a sorted-set member and its score). */
  readonly redisEntryBytes: number;
  /** Redis memory per member of an active user's following set (the timeline service's copy of whom they follow). */
  readonly redisFollowingMemberBytes: number;
  readonly redisNodeOpsPerSec: number;
  readonly redisNodeBytes: number;
  /** Disk bytes per logical byte of InnoDB rows (page fill, non-leaf pages, fragmentation). */
  readonly innodbOverhead: number;
  /** Bytes of one hydrated tweet (with its author) in a response. */
  readonly hydratedTweetBytes: number;
  /** Bytes of protocol overhead per API request and response (headers, framing). */
  readonly requestOverheadBytes: number;
  /** Share of media shown in timelines that people open in full. */
  readonly mediaOpenShare: number;
  /** Share of tweet lookups that miss the Redis cache. */
  readonly tweetCacheMissRatio: number;
}

export const SECONDS_PER_DAY = 86_400;
export const DAYS_PER_YEAR = 365;
const MiB = 1024 * 1024;

// Logical bytes per row, from the migrations (lib/db/migrations):
// column sizes plus InnoDB's ~18-byte record overhead (header, transaction
// id, roll pointer) on clustered rows and ~5 bytes on secondary entries.
export const ROW_BYTES = {
  /** tweets, excluding the text: ids, counters, times, version, JSON lists (empty), overhead. */
  tweetFixed: 80,
  /** tweets_by_author (author_id, id). */
  tweetByAuthor: 21,
  /** tweet_lookup: tweet id -> author, on the tweet's shard. */
  tweetLookup: 42,
  /** likes (+ likes_by_like_time) on the liker's shard and tweet_likes on the tweet's. */
  like: 165,
  /** follows (+ follows_by_time, follows_sync_pending) and followers (+ followers_by_time). */
  followEdge: 217,
  /** users (argon2 hash included), user_handles, user_emails. */
  user: 400,
  /** media (+ its three secondary keys) and media_lookup. */
  mediaRow: 460,
} as const;

/** The home list's and the following set's keys, headers and sentinels in Redis, besides their members. */
export const REDIS_LIST_OVERHEAD_BYTES = 300;
/** jemalloc fragmentation and replication buffers on top of what MEMORY USAGE reports. */
export const REDIS_FRAGMENTATION = 1.25;
/** ListFollowerIds pages (services/graph). */
export const FOLLOWER_PAGE = 5000;

export interface Rates {
  readonly tweets: number;
  readonly timelineReads: number;
  readonly likes: number;
  readonly searches: number;
  readonly mediaUploads: number;
  /** Home timelines written by fan-out. */
  readonly fanOutDeliveries: number;
  /** Tweets hydrated for timeline pages. */
  readonly hydratedTweets: number;
  /** Thumbnails fetched for media tweets shown. */
  readonly thumbnails: number;
  /** Media opened in full. */
  readonly mediaViews: number;
  /** Every request the gateway answers. */
  readonly apiRequests: number;
  /** Events published through the outbox (tweet created, liked, media uploaded). */
  readonly events: number;
}

export interface StorageYear {
  /** Tweet rows. */
  readonly tweets: number;
  /** tweets_by_author, tweet_lookup and the search index. */
  readonly indexes: number;
  readonly likes: number;
  readonly mediaRows: number;
  /** Photos, videos and thumbnails in the blob store (one copy). */
  readonly mediaBlobs: number;
}

export interface ServiceLoad {
  readonly service: string;
  /** Cores busy at peak. */
  readonly cores: number;
  readonly instances: number;
  /** Its main call (or event), for the reader. */
  readonly mainCall: string;
  /** Of those per second at peak. */
  readonly mainRate: number;
  /** Of those one instance handles at the target utilization, with the rest of its work in the same proportion. */
  readonly perInstance: number;
}

export interface CapacityReport {
  readonly average: Rates;
  readonly peak: Rates;
  readonly storage: {
    /** New data per year, on disk, one copy. */
    readonly perYear: StorageYear;
    /** Follow edges and user rows at the given size, on disk, one copy: a stock, not a yearly flow. */
    readonly edges: number;
    readonly users: number;
    /** MySQL on disk after retentionYears, one copy. */
    readonly mysqlPerCopyBytes: number;
    /** The same times the replication factor. */
    readonly mysqlTotalBytes: number;
    /** Blob store after retentionYears (one copy; the store's own redundancy comes on top). */
    readonly mediaBytes: number;
    /** MySQL bytes added per year on disk, all copies. */
    readonly mysqlPerYearBytes: number;
  };
  readonly bandwidth: {
    /** Bytes per second, into and out of the gateway. */
    readonly ingressAvg: number;
    readonly ingressPeak: number;
    readonly egressAvg: number;
    readonly egressPeak: number;
  };
  readonly redis: {
    readonly timelineBytes: number;
    readonly tweetCacheBytes: number;
    /** Both, with fragmentation. */
    readonly totalBytes: number;
    readonly peakOpsPerSec: number;
    readonly nodes: number;
  };
  readonly shards: {
    readonly byStorage: number;
    readonly byWrites: number;
    readonly byReads: number;
    readonly byRelay: number;
    /** The largest of the four, rounded up to a power of two (keyranges split in halves). */
    readonly shards: number;
    readonly peakWriteTxPerSec: number;
    readonly peakReadRowsPerSec: number;
    readonly mysqlServers: number;
  };
  readonly services: readonly ServiceLoad[];
  /** Cores of image-processing worker threads at peak (media service), besides its instances. */
  readonly imageWorkerCores: number;
}

export class CapacityInputError extends Error {
  override readonly name = "CapacityInputError";
}

/** Rejects inputs the arithmetic cannot use; names every bad one. */
export function checkInputs(i: CapacityInputs): void {
  const problems: string[] = [];
  const positive: (keyof CapacityInputs)[] = ["dailyActiveUsers", "registeredUsers", "pageSize", "peakFactor", "retentionYears", "replicationFactor", "timelineEntries", "shardMaxBytes"];
  for (const k of positive) if (!(Number.isFinite(i[k]) && i[k] > 0)) problems.push(`${k} must be a positive number`);
  const nonNegative: (keyof CapacityInputs)[] = ["tweetsPerUser", "readsPerUser", "likesPerUser", "searchesPerUser", "followsPerUser", "photoBytes", "videoBytes", "thumbBytes", "tweetTextBytes"];
  for (const k of nonNegative) if (!(Number.isFinite(i[k]) && i[k] >= 0)) problems.push(`${k} must be 0 or more`);
  for (const k of ["mediaShare", "videoShare"] as const) if (!(i[k] >= 0 && i[k] <= 1)) problems.push(`${k} must be between 0 and 1`);
  if (!(i.targetUtilization > 0 && i.targetUtilization <= 1)) problems.push("targetUtilization must be above 0 and at most 1");
  if (i.peakFactor < 1) problems.push("peakFactor must be at least 1");
  if (i.registeredUsers < i.dailyActiveUsers) problems.push("registeredUsers must be at least dailyActiveUsers");
  if (!Number.isInteger(i.pageSize)) problems.push("pageSize must be a whole number");
  if (problems.length > 0) throw new CapacityInputError(problems.join("; "));
}

export function averageMediaBytes(i: CapacityInputs): number {
  return (1 - i.videoShare) * i.photoBytes + i.videoShare * i.videoBytes;
}

export function dailyRates(i: CapacityInputs, f: CapacityFigures): Rates {
  const perSecond = (perUser: number): number => (i.dailyActiveUsers * perUser) / SECONDS_PER_DAY;
  const tweets = perSecond(i.tweetsPerUser);
  const timelineReads = perSecond(i.readsPerUser);
  const likes = perSecond(i.likesPerUser);
  const searches = perSecond(i.searchesPerUser);
  const mediaUploads = tweets * i.mediaShare;
  // Only active users' lists exist (an inactive follower's list expired and is
  // rebuilt on their next read), so fan-out writes followers x active share.
  const activeShare = i.dailyActiveUsers / i.registeredUsers;
  const fanOutDeliveries = tweets * i.followsPerUser * activeShare;
  const hydratedTweets = (timelineReads + searches) * i.pageSize;
  const thumbnails = hydratedTweets * i.mediaShare;
  const mediaViews = thumbnails * f.mediaOpenShare;
  return {
    tweets,
    timelineReads,
    likes,
    searches,
    mediaUploads,
    fanOutDeliveries,
    hydratedTweets,
    thumbnails,
    mediaViews,
    apiRequests: tweets + timelineReads + likes + searches + mediaUploads + thumbnails + mediaViews,
    events: tweets + likes + mediaUploads,
  };
}

export function scaleRates(r: Rates, factor: number): Rates {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v * factor])) as unknown as Rates;
}

/** Search postings per tweet when no benchmark measured the index: about one term per 7 bytes of text. */
export function assumedSearchIndexBytes(tweetTextBytes: number): number {
  const terms = Math.ceil(tweetTextBytes / 7);
  // search_docs: ids, state, body and terms (each about the text), time, overhead;
  // search_postings: term (~7 bytes), tweet id, overhead.
  return 47 + 2 * tweetTextBytes + terms * 34;
}

/** New data per year, on disk, one copy (MySQL rows with InnoDB overhead; blobs as stored). */
export function storagePerYear(i: CapacityInputs, f: CapacityFigures): StorageYear {
  const tweetsPerYear = i.dailyActiveUsers * i.tweetsPerUser * DAYS_PER_YEAR;
  const mediaPerYear = tweetsPerYear * i.mediaShare;
  const disk = f.innodbOverhead;
  return {
    tweets: tweetsPerYear * (ROW_BYTES.tweetFixed + i.tweetTextBytes) * disk,
    // The search figure is already on disk (measured, or assumed with the overhead).
    indexes: tweetsPerYear * ((ROW_BYTES.tweetByAuthor + ROW_BYTES.tweetLookup) * disk + f.searchIndexBytesPerTweet),
    likes: i.dailyActiveUsers * i.likesPerUser * DAYS_PER_YEAR * ROW_BYTES.like * disk,
    mediaRows: mediaPerYear * ROW_BYTES.mediaRow * disk,
    mediaBlobs: mediaPerYear * (averageMediaBytes(i) + i.thumbBytes),
  };
}

export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function estimateCapacity(i: CapacityInputs, f: CapacityFigures): CapacityReport {
  checkInputs(i);
  const average = dailyRates(i, f);
  const peak = scaleRates(average, i.peakFactor);

  // --- storage -----------------------------------------------------------------
  const perYear = storagePerYear(i, f);
  const edges = i.registeredUsers * i.followsPerUser * ROW_BYTES.followEdge * f.innodbOverhead;
  const users = i.registeredUsers * ROW_BYTES.user * f.innodbOverhead;
  const yearlyMysql = perYear.tweets + perYear.indexes + perYear.likes + perYear.mediaRows;
  const mysqlPerCopyBytes = yearlyMysql * i.retentionYears + edges + users;
  const storage = {
    perYear,
    edges,
    users,
    mysqlPerCopyBytes,
    mysqlTotalBytes: mysqlPerCopyBytes * i.replicationFactor,
    mediaBytes: perYear.mediaBlobs * i.retentionYears,
    mysqlPerYearBytes: yearlyMysql * i.replicationFactor,
  };

  // --- bandwidth -----------------------------------------------------------------
  const mediaBytes = averageMediaBytes(i);
  const ingress = (r: Rates): number =>
    r.tweets * (i.tweetTextBytes + f.requestOverheadBytes) +
    r.mediaUploads * (mediaBytes + f.requestOverheadBytes) +
    (r.timelineReads + r.likes + r.searches + r.thumbnails + r.mediaViews) * f.requestOverheadBytes;
  const egress = (r: Rates): number =>
    r.hydratedTweets * f.hydratedTweetBytes +
    r.thumbnails * i.thumbBytes +
    r.mediaViews * mediaBytes +
    r.apiRequests * f.requestOverheadBytes;
  const bandwidth = { ingressAvg: ingress(average), ingressPeak: ingress(peak), egressAvg: egress(average), egressPeak: egress(peak) };

  // --- shards ----------------------------------------------------------------------
  // Write transactions: a tweet commits on its author's shard and again in the
  // search index (its tweet-id shard); a like on the liker's shard and in
  // tweet_likes on the tweet's; an upload is created, then attached.
  const peakWriteTxPerSec = peak.tweets * 2 + peak.likes * 2 + peak.mediaUploads * 2;
  // Rows read from MySQL: each page's authors (no user cache) and the tweets
  // that miss the cache; timeline lists themselves come from Redis.
  const peakReadRowsPerSec = peak.hydratedTweets * (1 + f.tweetCacheMissRatio);
  const byStorage = Math.ceil(mysqlPerCopyBytes / i.shardMaxBytes);
  const byWrites = Math.ceil(peakWriteTxPerSec / f.primaryWriteTxPerSec);
  // Replicas serve reads too.
  const byReads = Math.ceil(peakReadRowsPerSec / (f.memberReadRowsPerSec * i.replicationFactor));
  const byRelay = Math.ceil(peak.events / f.relayEventsPerSec);
  const shardCount = nextPowerOfTwo(Math.max(1, byStorage, byWrites, byReads, byRelay));
  const shards = { byStorage, byWrites, byReads, byRelay, shards: shardCount, peakWriteTxPerSec, peakReadRowsPerSec, mysqlServers: shardCount * i.replicationFactor };

  // --- Redis -------------------------------------------------------------------------
  // Per active user: the home list and the set of whom they follow (services/timeline/lists.ts).
  const timelineBytes =
    i.dailyActiveUsers * (i.timelineEntries * f.redisEntryBytes + i.followsPerUser * f.redisFollowingMemberBytes + REDIS_LIST_OVERHEAD_BYTES);
  // Cached tweets live a day (CHIRP_TWEET_CACHE_TTL_MS): at most a day of tweets.
  const cachedTweetBytes = 2 * i.tweetTextBytes + 150;
  const tweetCacheBytes = average.tweets * SECONDS_PER_DAY * cachedTweetBytes;
  const redisTotal = (timelineBytes + tweetCacheBytes) * REDIS_FRAGMENTATION;
  // Per timeline read: the list, the tweet cache batch; per delivery one
  // (pipelined) write; per tweet its cache entry and lookup; per API request
  // the gateway's rate-limit script.
  const peakOpsPerSec = peak.timelineReads * 2 + peak.fanOutDeliveries + peak.tweets * 2 + peak.apiRequests;
  const redis = {
    timelineBytes,
    tweetCacheBytes,
    totalBytes: redisTotal,
    peakOpsPerSec,
    nodes: Math.max(1, Math.ceil(redisTotal / f.redisNodeBytes), Math.ceil(peakOpsPerSec / f.redisNodeOpsPerSec)),
  };

  // --- service instances -----------------------------------------------------------------
  const perShard = (rows: number): number => Math.min(rows, shardCount); // one statement per shard a batch touches
  // Fan-out reads every follower id (active or not), a page of 5000 at a time.
  const followerPages = Math.max(1, Math.ceil(i.followsPerUser / FOLLOWER_PAGE));
  const pagesWithMedia = 1 - (1 - i.mediaShare) ** i.pageSize;
  const servedMiB = (peak.thumbnails * i.thumbBytes + peak.mediaViews * mediaBytes) / MiB;
  const load = (service: string, usPerSecond: number, mainCall: string, mainRate: number): ServiceLoad => {
    const cores = usPerSecond / 1e6;
    return {
      service,
      cores,
      // Two at least: one instance down (a deploy, a crash) must not take the service away.
      instances: Math.max(2, Math.ceil(cores / i.targetUtilization)),
      mainCall,
      mainRate,
      perInstance: cores > 0 ? (mainRate * i.targetUtilization) / cores : 0,
    };
  };
  const services: ServiceLoad[] = [
    load(
      "gateway",
      peak.apiRequests * (f.edgeServerUs + f.rpcClientUs) + (servedMiB * f.mediaServeUsPerMiB) / 2,
      "public requests",
      peak.apiRequests,
    ),
    load(
      "timeline",
      peak.timelineReads * (f.rpcServerUs + 2 * f.redisCommandUs + 3 * f.rpcClientUs) +
        peak.fanOutDeliveries * f.fanOutDeliveryUs +
        peak.tweets * followerPages * f.rpcClientUs,
      "GetHomeTimeline",
      peak.timelineReads,
    ),
    load(
      "tweet",
      // PostTweet: tweets, tweet_lookup, outbox and the author's count in one transaction.
      peak.tweets * (f.rpcServerUs + 4 * f.dbWriteUs + i.mediaShare * f.rpcClientUs) +
        (peak.timelineReads + peak.searches) * (f.rpcServerUs + f.redisCommandUs + perShard(i.pageSize * f.tweetCacheMissRatio) * f.dbReadUs) +
        peak.likes * (f.rpcServerUs + 3 * f.dbWriteUs),
      "BatchGetTweets",
      peak.timelineReads + peak.searches,
    ),
    load("user", (peak.timelineReads + peak.searches) * (f.rpcServerUs + perShard(i.pageSize) * f.dbReadUs), "BatchGetUsers", peak.timelineReads + peak.searches),
    load("graph", peak.tweets * followerPages * (f.rpcServerUs + f.dbReadUs), "ListFollowerIds", peak.tweets * followerPages),
    load(
      "media",
      peak.mediaUploads * (f.rpcServerUs + 2 * f.dbWriteUs) +
        (peak.timelineReads + peak.searches) * pagesWithMedia * (f.rpcServerUs + perShard(i.pageSize * i.mediaShare) * f.dbReadUs) +
        (peak.thumbnails + peak.mediaViews) * f.rpcServerUs +
        (servedMiB * f.mediaServeUsPerMiB) / 2,
      "media served",
      peak.thumbnails + peak.mediaViews,
    ),
    load(
      "search",
      peak.tweets * 2 * f.dbWriteUs + peak.searches * (f.rpcServerUs + 2 * shardCount * f.dbReadUs + 2 * f.rpcClientUs),
      "SearchTweets",
      peak.searches,
    ),
  ];
  const imageWorkerCores = (peak.mediaUploads * (1 - i.videoShare) * f.imageProcessUs) / 1e6;

  return { average, peak, storage, bandwidth, redis, shards, services, imageWorkerCores };
}
