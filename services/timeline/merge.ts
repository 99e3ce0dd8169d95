// Reading a timeline from MySQL: the newest tweets of a set of authors, merged,
// as a threshold walk. Each round reads up to k newest tweets of each author
// still in play (one backward index walk each, many per statement, all shards
// in parallel). After a round the merge is exact down to the floor: the
// highest id at which some author's walk stopped without reaching its first
// tweet, since everything that author has below is unread. Authors whose walk
// stopped below the want-th best candidate cannot place and stop; the others
// go on with a larger k. So the rows read stay near `want` plus one walk per
// author, however many authors there are and however unevenly they post.
import type { ShardInfo } from "../../lib/shard/types.js";
import { newestFirst, type Entry } from "./entries.js";
import type { AuthorWalk, AuthorTweets } from "./author-tweets.js";

export interface MergeResult {
  /** Newest first: every live tweet of the authors with floor <= id < before, at most `want`. */
  readonly entries: Entry[];
  /** 0 when every author's walk reached their first tweet: nothing older exists. */
  readonly floor: bigint;
}

export interface MergeOptions {
  readonly authors: Iterable<bigint>;
  /** Exclusive upper bound (NO_CURSOR for the newest). */
  readonly before: bigint;
  readonly want: number;
  /** Rebuilds read primaries (see home.ts); pages of older tweets may read replicas. */
  readonly primary: boolean;
  /** Default 3: the answer is exact down to its floor whenever it stops. */
  readonly maxRounds?: number;
}

export async function mergeAuthors(authorTweets: AuthorTweets, opts: MergeOptions): Promise<MergeResult> {
  const authors = [...new Set(opts.authors)];
  const want = opts.want;
  if (authors.length === 0 || want < 1) return { entries: [], floor: 0n };
  const maxRounds = opts.maxRounds ?? 3;
  const maxK = pow2(want);
  const last = new Map<bigint, bigint>(authors.map((a) => [a, opts.before]));
  const exhausted = new Set<bigint>();
  const found: Entry[] = [];
  let k = Math.min(maxK, pow2(Math.ceil((2 * want) / authors.length)));
  let active = authors;
  let floor = 0n;
  for (let round = 1; ; round++) {
    const rows = await authorTweets.walkAuthors(active.map((a) => ({ authorId: a, before: last.get(a)!, limit: k })), opts.primary);
    const counts = new Map<bigint, number>();
    for (const r of rows) {
      counts.set(r.authorId, (counts.get(r.authorId) ?? 0) + 1);
      if (r.id < last.get(r.authorId)!) last.set(r.authorId, r.id);
      found.push(r);
    }
    for (const a of active) if ((counts.get(a) ?? 0) < k) exhausted.add(a);
    floor = 0n;
    for (const a of authors) if (!exhausted.has(a) && last.get(a)! > floor) floor = last.get(a)!;
    const sorted = newestFirst(found);
    const above = sorted.filter((e) => e.id >= floor).length;
    if (above >= want || floor === 0n || round >= maxRounds) break;
    const threshold = sorted.length >= want ? sorted[want - 1]!.id : 0n;
    active = authors.filter((a) => !exhausted.has(a) && last.get(a)! > threshold);
    if (active.length === 0) break;
    k = Math.min(maxK, k * 4);
  }
  let entries = newestFirst(found).filter((e) => e.id >= floor);
  if (entries.length > want) {
    entries = entries.slice(0, want);
    floor = entries[want - 1]!.id;
  }
  return { entries, floor };
}

function pow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
