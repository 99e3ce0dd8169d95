// The notification store's group commit (services/notification/store.ts)
// against real MariaDB: calls that meet on a shard while one of theirs runs
// share the next transaction (applyMany, and addSources' one round trip), each
// still gets its own decisions and announces only its own notifications, a
// call that fails in a shared transaction fails alone, and a key changed by
// two calls is applied in their order.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotificationKind } from "../../gen/chirp/notification/v1/notification_pb.js";
import { createIdGenerator } from "../../lib/ids.js";
import type { ShardRouter, Transaction } from "../../lib/shard/router.js";
import { Cause, likeChange, tweetChange, type CauseChange, type Decision } from "../../services/notification/causes.js";
import { createNotificationStore, createPushSubscriptionStore, type NotificationStore, type Shown } from "../../services/notification/store.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
const ids = createIdGenerator(1017);
const counts = { transactions: 0, sourceWrites: 0 };
let store: NotificationStore;

/** The router, counting the store's transactions and its writes of source rows (run or deferred). */
function counting(router: ShardRouter): ShardRouter {
  const bound = (target: object, p: string | symbol): unknown => {
    const v = Reflect.get(target, p) as unknown;
    return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
  };
  const countingWrites = <C extends object>(client: C, methods: readonly string[]): C =>
    new Proxy(client, {
      get(c, q) {
        if (typeof q !== "string" || !methods.includes(q)) return bound(c, q);
        return (sql: string, ...rest: unknown[]) => {
          if (sql.includes("INSERT INTO chirp.notification_sources")) counts.sourceWrites++;
          return (Reflect.get(c, q) as (...a: unknown[]) => unknown).call(c, sql, ...rest);
        };
      },
    });
  return new Proxy(router, {
    get(target, p) {
      if (p === "transaction") {
        return <T>(shard: Parameters<ShardRouter["transaction"]>[0], fn: (tx: Transaction) => Promise<T>, opts?: Parameters<ShardRouter["transaction"]>[2]) => {
          counts.transactions++;
          return target.transaction(shard, (tx) => fn(countingWrites(tx, ["execute", "defer", "deferExecute"])), opts);
        };
      }
      if (p === "primary") {
        return (...args: Parameters<ShardRouter["primary"]>) => countingWrites(target.primary(...args), ["execute"]);
      }
      return bound(target, p);
    },
  });
}

beforeAll(async () => {
  system = await startSystem({ mesh: false });
  store = createNotificationStore(counting(system.router));
});

afterAll(async () => {
  await system?.stop();
});

let nextUser = 7_100_000n;
/** `n` new user ids on the same shard. */
function usersOnOneShard(n: number): bigint[] {
  const shard = system.router.shardForUser(nextUser).name;
  const out: bigint[] = [];
  while (out.length < n) {
    const u = nextUser++;
    if (system.router.shardForUser(u).name === shard) out.push(u);
  }
  return out;
}

const AT = 1_780_000_000_000_000n;

function mention(tweetId: bigint, authorId: bigint, recipientId: bigint): CauseChange {
  return tweetChange(tweetId, authorId, recipientId, NotificationKind.MENTION, AT)!;
}

/** One applyMany call: its decisions, and what its announce was given. */
interface Call {
  readonly done: Promise<readonly Decision[]>;
  readonly announced: Shown[];
}

function apply(changes: readonly CauseChange[], fail?: Error): Call {
  const announced: Shown[] = [];
  const decisions: Decision[] = [];
  const done = store
    .applyMany(
      changes,
      () => ids.next(),
      async (tx, shown) => {
        if (fail !== undefined) throw fail;
        // As the outbox rows an announce writes: kept only if its transaction commits.
        (tx as Transaction).afterCommit(() => void announced.push(...shown));
      },
      async (_batch, d) => void decisions.push(...d),
    )
    .then(() => decisions);
  return { done, announced };
}

async function shownRows(recipientId: bigint): Promise<Array<{ subject_id: string; actor_id: string; state: number }>> {
  return system.router
    .primaryForUser(recipientId)
    .query("SELECT subject_id, actor_id, state FROM chirp.notifications WHERE recipient_id = ? ORDER BY subject_id", [recipientId]);
}

describe("notification store: group commit", () => {
  it("calls that meet on a shard share its next transaction; each gets its own decisions and announces only its own", async () => {
    const [author, ...recipients] = usersOnOneShard(25);
    const tweets = recipients.slice(0, 12).map(() => ids.next());
    const before = counts.transactions;
    // Twelve tweets at once, each mentioning two of the recipients.
    const calls = tweets.map((t, i) => apply([mention(t, author!, recipients[2 * i]!), mention(t, author!, recipients[2 * i + 1]!)]));
    for (const c of calls) expect(await c.done).toEqual(["show", "show"]);
    // The first ran alone; the eleven that arrived meanwhile, in one.
    expect(counts.transactions - before).toBe(2);
    calls.forEach((c, i) => {
      expect(c.announced.map((s) => [s.change.subjectId, s.change.recipientId])).toEqual([
        [tweets[i], recipients[2 * i]],
        [tweets[i], recipients[2 * i + 1]],
      ]);
      expect(new Set(c.announced.map((s) => s.id)).size).toBe(2);
    });
    for (let i = 0; i < 24; i++) {
      expect(await shownRows(recipients[i]!)).toEqual([{ subject_id: String(tweets[i >> 1]), actor_id: String(author), state: 1 }]);
    }
  });

  it("a call that fails in a shared transaction fails alone: the others are applied part by part", async () => {
    const [author, ...recipients] = usersOnOneShard(6);
    const tweets = recipients.map(() => ids.next());
    const refused = new Error("this call's announce failed");
    const before = counts.transactions;
    const calls = tweets.map((t, i) => apply([mention(t, author!, recipients[i]!)], i === 2 ? refused : undefined));
    const outcomes = await Promise.allSettled(calls.map((c) => c.done));
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
    // The router's transaction reports a failure of the code it ran as an internal error, the original its cause.
    expect(((outcomes[2] as PromiseRejectedResult).reason as { cause?: unknown }).cause).toBe(refused);
    // The first alone; the four behind it shared one, which failed; then each alone.
    expect(counts.transactions - before).toBe(1 + 1 + 4);
    for (const [i, r] of recipients.entries()) expect((await shownRows(r)).length).toBe(i === 2 ? 0 : 1);
    expect(calls.map((c) => c.announced.length)).toEqual([1, 1, 0, 1, 1]);
  });

  it("two calls changing one key meet in different transactions, in the order they came", async () => {
    const [author, blocker, liker] = usersOnOneShard(3);
    const tweet = ids.next();
    // A call in flight on the shard, so that the like and the unlike both wait behind it.
    const first = apply([mention(ids.next(), liker!, blocker!)]);
    const like = apply([likeChange({ tweetId: tweet, authorId: author!, likerId: liker!, likeVersion: 1n }, true, AT)!]);
    const unlike = apply([likeChange({ tweetId: tweet, authorId: author!, likerId: liker!, likeVersion: 2n }, false, AT + 1n)!]);
    await first.done;
    expect(await like.done).toEqual(["show"]);
    expect(await unlike.done).toEqual(["hide"]);
    const rows = await system.router
      .primaryForUser(author!)
      .query<{ state: number; version: string }>("SELECT state, version FROM chirp.notifications WHERE recipient_id = ? AND cause = ?", [author!, Cause.like]);
    expect(rows).toEqual([{ state: 0, version: "2" }]);
  });

  it("addSources: tweets that meet on their authors' shard share one write; a tweet deleted first reports so, and its rows go", async () => {
    const authors = usersOnOneShard(8);
    const tweets = authors.map(() => ids.next());
    const recipient = nextUser++;
    // The fifth tweet was deleted before its creation was handled.
    expect(await store.tweetDeleted(authors[4]!, tweets[4]!)).toEqual([]);
    const before = counts.sourceWrites;
    const added = await Promise.all(authors.map((a, i) => store.addSources(a, tweets[i]!, [recipient, recipient + 1n])));
    expect(added).toEqual([true, true, true, true, false, true, true, true]);
    expect(counts.sourceWrites - before).toBe(2);
    for (const [i, a] of authors.entries()) {
      const rows = await system.router
        .primaryForUser(a)
        .query<{ recipient_id: string }>("SELECT recipient_id FROM chirp.notification_sources WHERE author_id = ? AND tweet_id = ? ORDER BY recipient_id", [a, tweets[i]!]);
      expect(rows.map((r) => r.recipient_id)).toEqual(i === 4 ? ["0"] : [String(recipient), String(recipient + 1n)]);
    }
  });

  it("with a linger, holds a shard's first write that long so that what arrives meanwhile shares it", async () => {
    const lingering = createNotificationStore(counting(system.router), { lingerMs: 150 });
    const [a, b] = usersOnOneShard(2);
    const recipient = nextUser++;
    const before = counts.sourceWrites;
    // Without the linger the first would be written at once, alone, and the second after it: two writes.
    expect(await Promise.all([lingering.addSources(a!, ids.next(), [recipient]), lingering.addSources(b!, ids.next(), [recipient])])).toEqual([true, true]);
    expect(counts.sourceWrites - before).toBe(1);
  });

  it("mints a shared transaction's ids in the calls' order, whatever the order of their keys", async () => {
    const lingering = createNotificationStore(system.router, { lingerMs: 100 });
    const [recipient] = usersOnOneShard(1);
    const tweet = ids.next();
    // The later call's key sorts first (its actor's id is lower).
    const likes = [900n, 100n].map((actor) => likeChange({ tweetId: tweet, authorId: recipient!, likerId: nextUser + actor, likeVersion: 1n }, true, AT)!);
    const announced: Shown[][] = [[], []];
    await Promise.all(
      likes.map((change, i) =>
        lingering.applyMany([change], () => ids.next(), async (tx, shown) => void (tx as Transaction).afterCommit(() => void announced[i]!.push(...shown)), async () => {}),
      ),
    );
    const [first, second] = announced.map((a) => a[0]!.id);
    expect(second! > first!).toBe(true);
  });

  it("marks a notification pushable only when its recipient had a Web Push subscription as its transaction began", async () => {
    const [author, subscribed, unsubscribed, later] = usersOnOneShard(4) as [bigint, bigint, bigint, bigint];
    const subscriptions = createPushSubscriptionStore(system.router);
    const sub = (n: number) => ({ endpoint: `https://push.example.com/store-test/${n}`, p256dh: "p".repeat(87), auth: "a".repeat(22) });
    await subscriptions.add(subscribed, sub(1), 10);
    await subscriptions.add(subscribed, sub(2), 10);
    const tweet = ids.next();
    const call = apply([mention(tweet, author, subscribed), mention(tweet, author, unsubscribed), mention(tweet, author, later)]);
    expect(await call.done).toEqual(["show", "show", "show"]);
    expect(call.announced.map((s) => [s.change.recipientId, s.pushable])).toEqual([
      [subscribed, true],
      [unsubscribed, false],
      [later, false],
    ]);
    // Subscribed after that transaction: the next notification is pushable, the first is not made so.
    await subscriptions.add(later, sub(3), 10);
    const next = apply([mention(ids.next(), author, later)]);
    expect(await next.done).toEqual(["show"]);
    expect(next.announced.map((s) => s.pushable)).toEqual([true]);
  });

  it("markRead keeps the exact id it is given (a BIGINT past 2^53 compared with its string parameter went through a double)", async () => {
    const [user] = usersOnOneShard(1);
    // Ids 16 apart round to the same double: the position must not land on the lower one.
    const newest = 123471683813806081n;
    const primary = system.router.primaryForUser(user!);
    await primary.execute(
      `INSERT INTO chirp.notifications (recipient_id, cause, subject_id, actor_id, id, kind, state, version, event_time)
       VALUES (?, ?, 1, 2, ?, ?, 1, 1, UTC_TIMESTAMP(6))`,
      [user!, Cause.follow, newest, NotificationKind.FOLLOW],
    );
    await store.markRead(user!, 123471683813806070n);
    await store.markRead(user!, newest);
    const [row] = await primary.query<{ read_through_id: string }>("SELECT read_through_id FROM chirp.notification_reads WHERE user_id = ?", [user!]);
    expect(row?.read_through_id).toBe(String(newest));
    expect(await store.unreadCount(user!, 10)).toBe(0);
  });
});
