// The load a fault test runs under, and what it checks afterwards.
//
// A set of users follow each other (each follows the next `followsEach` in a
// ring). While a fault is injected, writers post tweets through the gateway
// (each text once: nothing here retries a post) and like earlier ones, and
// readers read home timelines; every outcome is recorded with its time. A post is acknowledged
// when the gateway answered with its tweet id. Afterwards, with the load
// stopped, every tweet ever acknowledged (by any fault of the file, so a later
// fault cannot quietly lose an earlier one's writes) must be readable, every
// user timeline must hold each of its author's acknowledged tweets once and
// nothing that was not posted, every home timeline must be exactly the union
// of the user timelines of its owner and the people they follow (fan-out is
// asynchronous: polled until it is, with a deadline), every acknowledged like
// must be counted, and the profile counts must match. The error window (first to last failed call, by code) and the
// time to recovery are printed, not asserted: the machine is shared.
import { performance } from "node:perf_hooks";
import type { Account, Answer, GatewayApi } from "../../e2e/support/api.js";
import { eventually } from "../../support/eventually.js";

const T = "chirp.tweet.v1.TweetService";
const TL = "chirp.timeline.v1.TimelineService";
const U = "chirp.user.v1.UserService";
const G = "chirp.graph.v1.GraphService";

export interface ApiTweet {
  readonly id: string;
  readonly authorId: string;
  readonly text: string;
}

interface Page {
  readonly tweets: ApiTweet[];
  readonly nextPageToken: string;
}

export interface Outcome {
  readonly op: "post" | "like" | "home";
  /** performance.now() when the call was sent and when it ended. */
  readonly sentAt: number;
  readonly at: number;
  /** Connect code, "fetch_failed" when no answer came; undefined for success. */
  readonly code: string | undefined;
}

export interface Posted {
  readonly text: string;
  readonly authorId: bigint;
  /** The tweet id, when the post was acknowledged. */
  id?: string;
}

export interface FaultReport {
  readonly fault: string;
  readonly posts: number;
  readonly acked: number;
  /** Acknowledged likes. */
  readonly likes: number;
  readonly reads: number;
  readonly errors: number;
  /** Failed calls by "op:code". */
  readonly byCode: Readonly<Record<string, number>>;
  /** When the failed calls ended, ms after the fault (the first few). */
  readonly errorsAtMs: readonly number[];
  /** First to last failed call, ms (0 without errors). */
  readonly windowMs: number;
  /** From the fault to the first acknowledged post sent after the last error (0 without errors). */
  readonly recoveryMs: number;
  /**
   * The longest stretch without an acknowledged post from the fault on, and
   * the slowest acknowledged post: a fault the mesh waits out (the shard
   * router holds writes until a failover is published) shows here, not as errors.
   */
  readonly maxGapMs: number;
  readonly slowestAckMs: number;
  /** From the end of the load until every check passed. */
  readonly consistentMs: number;
  /** Calls sent before the fault that ended after it, by op: the in-flight work the fault hit. */
  readonly inFlightAtFault: Readonly<Record<string, number>>;
}

export interface RunOptions {
  /** Acknowledged posts before the fault (warm-up). */
  readonly warmAcks?: number;
  /** Acknowledged posts, all sent after the last error, that count as recovered. */
  readonly recoveredAcks?: number;
  /** Liveness bound: writes must be acknowledged again within this long of the fault. */
  readonly recoverWithinMs?: number;
  /** How long the checks may take to pass (fan-out, relay and redelivery are asynchronous). */
  readonly consistentWithinMs?: number;
}

/** What a fault can wait on while the load runs. */
export interface LoadControl {
  /** Resolves once `n` more posts were acknowledged (posts sent from now on). */
  acks(n: number, timeoutMs?: number): Promise<void>;
}

export interface Workload {
  readonly users: readonly Account[];
  /** Whom each user follows (ids as decimal strings). */
  readonly following: ReadonlyMap<string, readonly string[]>;
  readonly posted: readonly Posted[];
  /**
   * Starts the load, waits for the warm-up, runs `fault` (which resolves once
   * the fault is injected and, where the test repairs it, repaired), waits for
   * writes to be acknowledged again, stops the load, checks everything and
   * prints the report.
   */
  run(fault: string, inject: (load: LoadControl) => Promise<void>, options?: RunOptions): Promise<FaultReport>;
  /** The checks alone, polled until they pass (or the deadline: then they throw). */
  verify(withinMs: number): Promise<void>;
}

export interface WorkloadOptions {
  readonly api: GatewayApi;
  readonly users: number;
  readonly followsEach: number;
  readonly writers?: number;
  readonly readers?: number;
  /** Pause after each acknowledged post, per writer (keeps a 2-core machine responsive). */
  readonly paceMs?: number;
}

export async function createWorkload(opts: WorkloadOptions): Promise<Workload> {
  const { api } = opts;
  const writers = opts.writers ?? 3;
  const readers = opts.readers ?? 2;
  const paceMs = opts.paceMs ?? 20;
  const users = await api.signUpMany(opts.users);
  const following = new Map<string, string[]>();
  await inParallel(users, 8, async (u, i) => {
    const followees = Array.from({ length: opts.followsEach }, (_, k) => users[(i + k + 1) % users.length]!);
    for (const f of followees) await api.ok(`${G}/Follow`, { userId: String(f.id) }, u.token);
    following.set(String(u.id), followees.map((f) => String(f.id)));
  });
  const posted: Posted[] = [];
  /** Per tweet id: who was told their like counted, and who tried. */
  const likes = new Map<string, { acked: Set<string>; tried: Set<string> }>();
  const ackedTweets: string[] = [];
  let seq = 0;

  const run = async (fault: string, inject: (load: LoadControl) => Promise<void>, o: RunOptions = {}): Promise<FaultReport> => {
    const outcomes: Outcome[] = [];
    let waiters: (() => void)[] = [];
    // Calls sent and not answered yet: the fault is injected while one is (see below).
    let inFlight = 0;
    const record = (outcome: Outcome): void => {
      outcomes.push(outcome);
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    };
    const changed = (ms: number): Promise<void> =>
      new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    let running = true;
    const slug = fault.replace(/[^a-z0-9]+/gi, "-");
    const writer = async (): Promise<void> => {
      while (running) {
        const n = seq++;
        const author = users[n % users.length]!;
        const p: Posted = { text: `${slug} #${n}`, authorId: author.id };
        posted.push(p);
        const sentAt = performance.now();
        inFlight++;
        const answer = await callSafely<{ tweet: ApiTweet }>(api, `${T}/PostTweet`, { text: p.text }, author.token);
        inFlight--;
        if (answer.code === undefined) {
          p.id = answer.body.tweet.id;
          ackedTweets.push(p.id);
        }
        record({ op: "post", sentAt, at: performance.now(), code: answer.code });
        await sleep(answer.code === undefined ? paceMs : 50);
        // Every third post, a like of an earlier tweet (a write on the tweet's shard, with its own event).
        if (n % 3 === 0 && ackedTweets.length > 0) {
          const tweetId = ackedTweets[(n * 7919) % ackedTweets.length]!;
          const liker = users[(n * 31 + 5) % users.length]!;
          const entry = likes.get(tweetId) ?? { acked: new Set<string>(), tried: new Set<string>() };
          likes.set(tweetId, entry);
          entry.tried.add(String(liker.id));
          const likeSent = performance.now();
          inFlight++;
          const liked = await callSafely(api, `${T}/LikeTweet`, { tweetId }, liker.token);
          inFlight--;
          if (liked.code === undefined) entry.acked.add(String(liker.id));
          record({ op: "like", sentAt: likeSent, at: performance.now(), code: liked.code });
        }
      }
    };
    const reader = async (): Promise<void> => {
      let n = 0;
      while (running) {
        const who = users[n++ % users.length]!;
        const sentAt = performance.now();
        inFlight++;
        const answer = await callSafely(api, `${TL}/GetHomeTimeline`, { pageSize: 20 }, who.token);
        inFlight--;
        record({ op: "home", sentAt, at: performance.now(), code: answer.code });
        await sleep(answer.code === undefined ? paceMs : 50);
      }
    };
    const acksSentAfter = (t: number): number => outcomes.filter((x) => x.op === "post" && x.code === undefined && x.sentAt > t).length;
    const errors = (): Outcome[] => outcomes.filter((x) => x.code !== undefined);
    const waitUntil = async (what: string, timeoutMs: number, done: () => boolean): Promise<void> => {
      const deadline = performance.now() + timeoutMs;
      while (!done()) {
        const left = deadline - performance.now();
        if (left <= 0) {
          const last = errors().at(-1);
          throw new Error(`${fault}: ${what} not within ${timeoutMs} ms (last error: ${last?.op} ${last?.code})`);
        }
        await changed(Math.min(left, 1000));
      }
    };

    const loops = [...Array.from({ length: writers }, writer), ...Array.from({ length: readers }, reader)];
    let faultAt = 0;
    let loadEnd = 0;
    try {
      const start = performance.now();
      await waitUntil("warm-up", 60_000, () => acksSentAfter(start) >= (o.warmAcks ?? 30));
      // The fault lands while a call is in flight: with calls of a few milliseconds between the
      // loops' pauses, an instant picked at random can fall between them (the checks then say
      // nothing about work the fault interrupted). A call starts within a pause of the loops.
      while (inFlight === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      faultAt = performance.now();
      await inject({
        acks: (n, timeoutMs = 30_000) => {
          const from = performance.now();
          return waitUntil(`${n} acknowledged posts`, timeoutMs, () => acksSentAfter(from) >= n);
        },
      });
      const injected = performance.now();
      const recoveredAcks = o.recoveredAcks ?? 30;
      await waitUntil("recovery", o.recoverWithinMs ?? 60_000, () => acksSentAfter(Math.max(injected, errors().at(-1)?.at ?? 0)) >= recoveredAcks);
    } finally {
      running = false;
      await Promise.all(loops);
      loadEnd = performance.now();
    }

    await verify(o.consistentWithinMs ?? 60_000);
    const consistentMs = performance.now() - loadEnd;
    const failed = errors();
    const lastError = failed.at(-1);
    const firstAckAfter = lastError === undefined ? undefined : outcomes.find((x) => x.op === "post" && x.code === undefined && x.sentAt > lastError.at);
    const byCode: Record<string, number> = {};
    for (const e of failed) byCode[`${e.op}:${e.code}`] = (byCode[`${e.op}:${e.code}`] ?? 0) + 1;
    const report: FaultReport = {
      fault,
      posts: outcomes.filter((x) => x.op === "post").length,
      likes: outcomes.filter((x) => x.op === "like" && x.code === undefined).length,
      acked: outcomes.filter((x) => x.op === "post" && x.code === undefined).length,
      reads: outcomes.filter((x) => x.op === "home").length,
      errors: failed.length,
      byCode,
      errorsAtMs: failed.slice(0, 8).map((e) => e.at - faultAt),
      windowMs: failed.length === 0 ? 0 : failed.at(-1)!.at - failed[0]!.sentAt,
      recoveryMs: firstAckAfter === undefined ? 0 : firstAckAfter.at - faultAt,
      maxGapMs: maxGap(outcomes.filter((x) => x.op === "post" && x.code === undefined && x.at > faultAt).map((x) => x.at), faultAt, loadEnd),
      slowestAckMs: Math.max(0, ...outcomes.filter((x) => x.op === "post" && x.code === undefined && x.at > faultAt).map((x) => x.at - x.sentAt)),
      consistentMs,
      inFlightAtFault: countBy(outcomes.filter((x) => x.sentAt < faultAt && x.at > faultAt).map((x) => x.op)),
    };
    console.log(formatReport(report));
    return report;
  };

  /** Every problem the checks find now (empty: all good). */
  const problems = async (): Promise<string[]> => {
    const found: string[] = [];
    const postedByText = new Map(posted.map((p) => [p.text, p]));
    const acked = posted.filter((p) => p.id !== undefined);

    // Every acknowledged tweet is readable, as posted, with every acknowledged like counted
    // (and at most the likes tried: an unanswered one may or may not have landed).
    await inParallel(acked, 16, async (p) => {
      const answer = await callSafely<{ tweet: ApiTweet & { likeCount?: number | string } }>(api, `${T}/GetTweet`, { tweetId: p.id });
      if (answer.code !== undefined) return void found.push(`GetTweet ${p.id} (${p.text}): ${answer.code}`);
      const { tweet } = answer.body;
      if (tweet.text !== p.text || tweet.authorId !== String(p.authorId)) found.push(`GetTweet ${p.id}: not as posted`);
      const liked = likes.get(p.id!);
      const count = Number(tweet.likeCount ?? 0);
      if (count < (liked?.acked.size ?? 0) || count > (liked?.tried.size ?? 0)) {
        found.push(`GetTweet ${p.id}: likeCount ${count}, ${liked?.acked.size ?? 0} acknowledged likes of ${liked?.tried.size ?? 0} tried`);
      }
    });

    // User timelines: each acknowledged tweet once, nothing never posted, each text once; counts.
    const userTimelines = new Map<string, ApiTweet[]>();
    await inParallel(users, 8, async (u) => {
      const tweets = await allPages((token) => api.call<Page>(`${TL}/GetUserTimeline`, { userId: String(u.id), pageSize: 100, pageToken: token }, u.token));
      if (typeof tweets === "string") return void found.push(`user timeline of ${u.handle}: ${tweets}`);
      userTimelines.set(String(u.id), tweets);
      found.push(...duplicates(`user timeline of ${u.handle}`, tweets));
      const texts = new Set<string>();
      for (const t of tweets) {
        const p = postedByText.get(t.text);
        if (p === undefined || String(p.authorId) !== t.authorId) found.push(`user timeline of ${u.handle}: ${t.id} (${t.text}) was never posted by them`);
        else if (p.id !== undefined && p.id !== t.id) found.push(`user timeline of ${u.handle}: "${t.text}" stored as ${t.id}, acknowledged as ${p.id}`);
        if (texts.has(t.text)) found.push(`user timeline of ${u.handle}: "${t.text}" twice (a post written twice)`);
        texts.add(t.text);
      }
      const ids = new Set(tweets.map((t) => t.id));
      for (const p of acked) if (p.authorId === u.id && !ids.has(p.id!)) found.push(`user timeline of ${u.handle}: acknowledged ${p.id} (${p.text}) missing`);
      const profile = await callSafely<{ user: { tweetCount: number; followerCount: number; followingCount: number } }>(api, `${U}/GetUser`, { userId: String(u.id) });
      if (profile.code !== undefined) return void found.push(`GetUser ${u.handle}: ${profile.code}`);
      const { tweetCount, followerCount, followingCount } = profile.body.user;
      const followers = [...following.values()].filter((f) => f.includes(String(u.id))).length;
      if (Number(tweetCount ?? 0) !== tweets.length) found.push(`${u.handle}: tweetCount ${tweetCount}, user timeline holds ${tweets.length}`);
      if (Number(followingCount ?? 0) !== following.get(String(u.id))!.length || Number(followerCount ?? 0) !== followers) {
        found.push(`${u.handle}: follows ${followingCount}/${following.get(String(u.id))!.length}, followers ${followerCount}/${followers}`);
      }
    });
    if (found.length > 0) return found;

    // Home timelines: exactly the tweets of the owner and the people they follow, each once.
    await inParallel(users, 8, async (u) => {
      const tweets = await allPages((token) => api.call<Page>(`${TL}/GetHomeTimeline`, { pageSize: 100, pageToken: token }, u.token));
      if (typeof tweets === "string") return void found.push(`home timeline of ${u.handle}: ${tweets}`);
      found.push(...duplicates(`home timeline of ${u.handle}`, tweets));
      const want = new Set([String(u.id), ...following.get(String(u.id))!].flatMap((a) => (userTimelines.get(a) ?? []).map((t) => t.id)));
      const have = new Set(tweets.map((t) => t.id));
      const missing = [...want].filter((id) => !have.has(id));
      const extra = [...have].filter((id) => !want.has(id));
      if (missing.length > 0) found.push(`home timeline of ${u.handle}: ${missing.length} of ${want.size} missing (${missing.slice(0, 3).join(", ")}...)`);
      if (extra.length > 0) found.push(`home timeline of ${u.handle}: ${extra.length} tweets of people they do not follow (${extra.slice(0, 3).join(", ")}...)`);
    });
    return found;
  };

  const verify = async (withinMs: number): Promise<void> => {
    await eventually(
      "consistent",
      async () => {
        const found = await problems();
        if (found.length > 0) throw new Error(`${found.length} problems:\n  ${found.slice(0, 25).join("\n  ")}`);
        return true;
      },
      { timeoutMs: withinMs, intervalMs: 250 },
    );
  };

  return { users, following, posted, run, verify };
}

export function formatReport(r: FaultReport): string {
  const codes = Object.entries(r.byCode)
    .map(([k, n]) => `${k} x${n}`)
    .join(", ");
  return (
    `[chaos] ${r.fault}: ${r.acked}/${r.posts} posts acknowledged, ${r.likes} likes, ${r.reads} home reads; ` +
    (r.errors === 0
      ? "no failed calls"
      : `${r.errors} failed calls (${codes}) over ${ms(r.windowMs)} (at ${r.errorsAtMs.map((t) => `+${(t / 1000).toFixed(1)}`).join(" ")} s), ` +
        `writes acknowledged again ${ms(r.recoveryMs)} after the fault`) +
    `; longest pause between acknowledged posts ${ms(r.maxGapMs)}, slowest acknowledged post ${ms(r.slowestAckMs)}` +
    `; every check passed ${ms(r.consistentMs)} after the load stopped` +
    `; in flight at the fault: ${Object.entries(r.inFlightAtFault).map(([op, n]) => `${n} ${op}`).join(", ") || "nothing"}`
  );
}

function countBy(keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

const ms = (n: number): string => (n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`);

/** A call whose transport failure (no HTTP answer) is an outcome too, not an exception. */
export async function callSafely<R>(api: GatewayApi, method: string, body: unknown, token?: string): Promise<Answer<R>> {
  try {
    return await api.call<R>(method, body, token);
  } catch {
    return { status: 0, code: "fetch_failed", body: {} as R };
  }
}

/** Every page of a list, or what went wrong reading it. */
async function allPages(read: (token: string) => Promise<Answer<Page>>): Promise<ApiTweet[] | string> {
  const tweets: ApiTweet[] = [];
  let token = "";
  for (let pages = 0; pages < 1000; pages++) {
    let answer: Answer<Page>;
    try {
      answer = await read(token);
    } catch (err) {
      return `fetch failed: ${String(err)}`;
    }
    if (answer.code !== undefined) return answer.code;
    tweets.push(...answer.body.tweets);
    token = answer.body.nextPageToken;
    if (token === "") return tweets;
  }
  return "more than 1000 pages";
}

/** The longest interval in [from, to] without one of `times` (sorted or not). */
function maxGap(times: number[], from: number, to: number): number {
  let prev = from;
  let gap = 0;
  for (const t of [...times].sort((a, b) => a - b)) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, to - prev);
}

function duplicates(where: string, tweets: readonly ApiTweet[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const t of tweets) (seen.has(t.id) ? twice : seen).add(t.id);
  return twice.size === 0 ? [] : [`${where}: ${twice.size} tweets listed twice (${[...twice].slice(0, 3).join(", ")})`];
}

export async function inParallel<T>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

/** Pacing between calls of a load loop (a rate, not a wait for an event). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
