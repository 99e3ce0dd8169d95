// Search and trends through the gateway, with the whole mesh as `npm start`
// runs it (private cluster, every service process, the gateway): users sign
// up and post with the real PostTweet/DeleteTweet, the index and the trend
// counts follow through the outbox, the relay, JetStream and the search
// service's durable consumers, and searches are hydrated by the tweet
// service. Redelivered events are published by hand from the outbox rows.
// The last test kills both members of replica set rs1 (shards 80-c0, c0-).
import { fromBinary } from "@bufbuild/protobuf";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENTS } from "../../lib/events/subjects.js";
import type { Mesh } from "../../devcluster/launch.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { gatewayApi, type Account } from "./support/api.js";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";

const TRENDS_WINDOW_MS = 8000;
const TRENDS_BUCKET_MS = 500;

let system: TestSystem;
let mesh: Mesh;
let router: ShardRouter;
let nc: NatsConnection;
let js: JetStreamClient;

beforeAll(async () => {
  // The relay's default poll (50 ms): the 2 s visibility is checked as deployed.
  system = await startSystem({
    env: {
      LOG_LEVEL: "error",
      CHIRP_SEARCH_TRENDS_WINDOW_MS: String(TRENDS_WINDOW_MS),
      CHIRP_SEARCH_TRENDS_BUCKET_MS: String(TRENDS_BUCKET_MS),
    },
  });
  ({ mesh, router } = system);
  nc = await connectNats({ ...parseNatsUrl(system.infra.natsUrl), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  js = jetstream(nc);
});

afterAll(async () => {
  await nc?.close();
  await system?.stop();
});

// --- the public API -------------------------------------------------------

interface ApiTweet {
  id: string;
  authorId: string;
  author?: { id: string; handle: string };
  text: string;
  hashtags: string[];
}

interface SearchPage {
  tweets: ApiTweet[];
  nextPageToken: string;
  partial: boolean;
  unavailableShards: string[];
}

const { call, ok, signUp } = gatewayApi(() => mesh.gatewayUrl, "s");

const T = "chirp.tweet.v1.TweetService";
const S = "chirp.search.v1.SearchService";
const postOk = async (who: Account, text: string): Promise<ApiTweet> => (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, { text }, who.token)).tweet;
const deleteOk = (who: Account, id: string) => ok(`${T}/DeleteTweet`, { tweetId: id }, who.token);
const search = (query: string, extra: Record<string, unknown> = {}) => call<SearchPage>(`${S}/SearchTweets`, { query, ...extra });
const searchOk = (query: string, extra: Record<string, unknown> = {}) => ok<SearchPage>(`${S}/SearchTweets`, { query, ...extra });
const idsOf = (page: SearchPage): string[] => page.tweets.map((t) => t.id);
const trends = async (): Promise<Record<string, number>> => {
  const { trends: list } = await ok<{ trends: { hashtag: string; tweetCount: number }[] }>(`${S}/GetTrends`, { limit: 50 });
  return Object.fromEntries(list.map((t) => [t.hashtag, t.tweetCount]));
};

/** The index rows of a tweet, read on its index shard's primary. */
async function postingsOf(tweetId: string): Promise<number> {
  const [row] = await router.primaryForUser(BigInt(tweetId)).query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.search_postings WHERE tweet_id = ?", [tweetId]);
  return Number(row!.n);
}

/** The search service's counter of applied events, by its labels (`consumer=...,event=...,result=...`). */
async function applied(labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${mesh.services.search.metricsPort}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith("chirp_search_events_applied_total{")) continue;
    if (labels.split(",").every((l) => line.includes(l.replace(/=(.*)$/, '="$1"')))) total += Number(line.split(" ").pop());
  }
  return total;
}

/** Publishes an outbox row's event again under a new message id: what a relay does after the duplicate window. */
async function redeliver(author: Account, subject: string, tweetId: string, n: number): Promise<void> {
  const rows = await router
    .primaryForUser(author.id)
    .query<{ payload: Buffer }>("SELECT payload FROM chirp.outbox WHERE user_id = ? AND subject = ? ORDER BY id", [
      author.id.toString(),
      subject,
    ]);
  const schema = subject === EVENTS.tweetCreated.subject ? EVENTS.tweetCreated.schema : EVENTS.tweetDeleted.schema;
  const row = rows.find((r) => String((fromBinary(schema, r.payload) as { tweetId: bigint }).tweetId) === tweetId);
  if (row === undefined) throw new Error(`no ${subject} outbox row for ${tweetId}`);
  const h = natsHeaders();
  h.set("chirp-user-id", author.id.toString());
  await js.publish(subject, row.payload, { msgID: `search-e2e-redeliver-${tweetId}-${n}`, headers: h });
}

// ---------------------------------------------------------------------------

let alice: Account;
let bob: Account;

beforeAll(async () => {
  [alice, bob] = await Promise.all([signUp(), signUp()]);
});

describe("SearchTweets: the query forms", () => {
  let creme: ApiTweet;
  let plain: ApiTweet;
  let ny: ApiTweet;
  let yn: ApiTweet;
  let rustTag: ApiTweet;
  let rustWord: ApiTweet;
  let mention: ApiTweet;
  let hamlet: ApiTweet;

  beforeAll(async () => {
    creme = await postOk(alice, "La Crème Brûlée de Zoë est à tomber");
    plain = await postOk(bob, "creme brulee is fine too");
    ny = await postOk(alice, "new york pizza tonight");
    yn = await postOk(bob, "york new pizza? no, new pizza in york");
    rustTag = await postOk(alice, "shipping it in #Rust today");
    rustWord = await postOk(bob, "rust on my old bike");
    mention = await postOk(alice, `lunch with @${bob.handle.toUpperCase()} today`);
    hamlet = await postOk(bob, "to be or not to be, that is the question");
    // Everything is indexed once the last one is.
    await eventually("the last of them indexed", async () => (await searchOk("question")).tweets.length === 1);
  });

  it("matches every word, without regard to case or accents, newest first, hydrated", async () => {
    const page = await searchOk("CREME brulee");
    expect(idsOf(page)).toEqual([plain.id, creme.id]);
    expect(page.partial).toBe(false);
    expect(page.unavailableShards).toEqual([]);
    expect(page.tweets[1]).toMatchObject({ id: creme.id, text: creme.text, author: { handle: alice.handle } });
    expect(idsOf(await searchOk("crème brûlée zoe"))).toEqual([creme.id]);
    expect(idsOf(await searchOk("ZOË à"))).toEqual([creme.id]);
    expect(idsOf(await searchOk("creme pizza"))).toEqual([]);
  });

  it("finds one-letter words and stopwords, and quoted phrases only adjacent and in order", async () => {
    expect(idsOf(await searchOk("to be or not"))).toEqual([hamlet.id]);
    expect(idsOf(await searchOk(`"to be or not to be"`))).toEqual([hamlet.id]);
    expect(idsOf(await searchOk(`"be to"`))).toEqual([]);
    expect(idsOf(await searchOk(`"new york" pizza`))).toEqual([ny.id]);
    expect(idsOf(await searchOk(`"york new"`))).toEqual([yn.id]);
    expect(idsOf(await searchOk("new york pizza"))).toEqual([yn.id, ny.id]);
  });

  it("matches #hashtags as tags, @handles as mentions and from:handle as the author", async () => {
    expect(idsOf(await searchOk("#rust"))).toEqual([rustTag.id]);
    expect(idsOf(await searchOk("#RUST today"))).toEqual([rustTag.id]);
    expect(idsOf(await searchOk("rust"))).toEqual([rustWord.id, rustTag.id]);
    expect(idsOf(await searchOk(`@${bob.handle}`))).toEqual([mention.id]);
    expect(idsOf(await searchOk(`@${bob.handle.toUpperCase()} lunch`))).toEqual([mention.id]);
    expect(idsOf(await searchOk(`from:${alice.handle} pizza`))).toEqual([ny.id]);
    expect(idsOf(await searchOk(`from:${bob.handle} pizza`))).toEqual([yn.id]);
    expect(idsOf(await searchOk(`from:${alice.handle} #rust`))).toEqual([rustTag.id]);
    expect(idsOf(await searchOk(`from:${bob.handle} #rust`))).toEqual([]);
    // A handle nobody has matches nothing; it is not an error.
    expect(await searchOk("@nobody_at_all pizza")).toMatchObject({ tweets: [], nextPageToken: "", partial: false });
    expect(await searchOk("from:nobody_at_all")).toMatchObject({ tweets: [], nextPageToken: "" });
  });
});

describe("SearchTweets: SQL and regex metacharacters are text", () => {
  it("matches them as the words around them and never as wildcards, operators or SQL", async () => {
    const t = await postOk(alice, `metaq 100% natural_flavor (really) c++ 'quoted' "dq" back\\slash -minus +plus a.*b`);
    const other = await postOk(alice, "metaq 10 unnatural");
    await eventually("both indexed", async () => (await searchOk("metaq")).tweets.length === 2);
    // The words around the symbols match; the symbols themselves are separators.
    for (const q of [
      "metaq 100%",
      "natural_flavor",
      `"natural flavor"`,
      "metaq (really)",
      "metaq c++",
      "metaq 'quoted'",
      `metaq "dq"`,
      "metaq back\\slash",
      "metaq -minus",
      "metaq +plus",
      "metaq a.*b",
    ]) {
      expect(idsOf(await searchOk(q)), q).toEqual([t.id]);
    }
    // Symbols alone next to a word add nothing to it: no wildcard, no negation, no group.
    for (const q of ["metaq .*", "metaq %", "metaq _", "metaq *", "metaq \\", "metaq ( )", "metaq -", "metaq +", `metaq '`]) {
      expect(idsOf(await searchOk(q)), q).toEqual([other.id, t.id]);
    }
    // A LIKE pattern would match "100%" for "10%"; a regex would match anything for ".*".
    expect(idsOf(await searchOk("metaq 10%"))).toEqual([other.id]);
    expect(idsOf(await searchOk("metaq nat%"))).toEqual([]);
    expect(idsOf(await searchOk("metaq natural.*"))).toEqual([t.id]);
    expect(idsOf(await searchOk("metaq nat.*"))).toEqual([]);
    expect(await searchOk(`metaq' OR '1'='1`)).toMatchObject({ tweets: [] });
    expect(await searchOk(`metaq"; DROP TABLE search_postings; --`)).toMatchObject({ tweets: [] });
    expect(idsOf(await searchOk("metaq"))).toEqual([other.id, t.id]);
  });
});

describe("SearchTweets: bad queries", () => {
  it("refuses empty, too long and operator-only queries, and bad page tokens, with InvalidArgument", async () => {
    const bad: Record<string, Record<string, unknown>> = {
      empty: { query: "" },
      blank: { query: "   \t " },
      "500 characters": { query: "a ".repeat(250) },
      "257 characters": { query: "x".repeat(257) },
      "only operators": { query: "# @ from: \"\"" },
      "only a hash": { query: "#" },
      "only an at": { query: "@" },
      "only from:": { query: "from:" },
      "only punctuation": { query: "% _ * ' \\ + - ( ) .*" },
      "too many terms": { query: Array.from({ length: 17 }, (_, i) => `w${i}`).join(" ") },
      "page size 101": { query: "pizza", pageSize: 101 },
      "malformed token": { query: "pizza", pageToken: "not a token!" },
      "token of another query": { query: "pizza", pageToken: "" },
    };
    // A real token, issued for another query.
    const page = await searchOk("a", { pageSize: 1 });
    expect(page.nextPageToken).not.toBe("");
    bad["token of another query"] = { query: "pizza", pageToken: page.nextPageToken };
    for (const [what, body] of Object.entries(bad)) {
      const { query, ...extra } = body as { query: string };
      expect((await search(query, extra)).code, what).toBe("invalid_argument");
    }
    // The same query, spelled otherwise, takes the token.
    expect((await search("A", { pageSize: 1, pageToken: page.nextPageToken })).status).toBe(200);
  });
});

describe("SearchTweets: freshness", () => {
  // How fast is for the benchmark: bench/search.ts measures indexing lag (outbox commit ->
  // searchable: p50, p99, share within 2 s; not the delete side). Here only that it happens.
  it("finds a new tweet once it is indexed, and stops finding it once it is deleted", async () => {
    for (let i = 0; i < 5; i++) {
      const word = `fresh${i}x${process.pid}`;
      const t = await postOk(i % 2 === 0 ? alice : bob, `${word} just posted`);
      await eventually("the new tweet found", async () => idsOf(await searchOk(word)).includes(t.id), { timeoutMs: 15_000 });

      await deleteOk(i % 2 === 0 ? alice : bob, t.id);
      // Through the API at once (hydration leaves deleted tweets out)...
      expect(idsOf(await searchOk(word))).toEqual([]);
      // ...and out of the index itself.
      await eventually("the deleted tweet out of the index", async () => (await postingsOf(t.id)) === 0, { timeoutMs: 15_000 });
    }
  });
});

describe("SearchTweets: pages", () => {
  it("walks a changing result set by keyset: each tweet that stays is seen once, in order; new ones stay above the cursor; deleted ones drop", async () => {
    const word = `pagewalk${process.pid}`;
    const made: ApiTweet[] = [];
    for (let i = 0; i < 25; i++) made.push(await postOk(i % 3 === 0 ? bob : alice, `${word} number ${i}`));
    await eventually("all 25 indexed", async () => (await searchOk(word, { pageSize: 100 })).tweets.length === 25);
    const newestFirst = [...made].reverse().map((t) => t.id);

    const first = await searchOk(word, { pageSize: 10 });
    expect(idsOf(first)).toEqual(newestFirst.slice(0, 10));
    expect(first.nextPageToken).not.toBe("");

    // Meanwhile: three new tweets, one deleted from page 1 and one from page 2.
    const fresh = [await postOk(alice, `${word} late 1`), await postOk(bob, `${word} late 2`), await postOk(alice, `${word} late 3`)];
    const goneSeen = made[20]!;
    const goneAhead = made[10]!;
    await deleteOk(alice, goneSeen.id);
    await deleteOk(alice, goneAhead.id);
    await eventually("the new and the deleted ones applied", async () => (await searchOk(word, { pageSize: 100 })).tweets.length === 26);

    const seen = [...idsOf(first)];
    let token = first.nextPageToken;
    let pages = 1;
    while (token !== "") {
      const page = await searchOk(word, { pageSize: 10, pageToken: token });
      seen.push(...idsOf(page));
      token = page.nextPageToken;
      pages++;
      expect(pages).toBeLessThan(10);
    }
    expect(seen).toEqual(newestFirst.filter((id) => id !== goneAhead.id));
    expect(new Set(seen).size).toBe(seen.length);
    for (const t of fresh) expect(seen).not.toContain(t.id);
    // A new walk starts with the new tweets and without the deleted ones.
    const again = await searchOk(word, { pageSize: 100 });
    expect(idsOf(again)).toEqual([...fresh].reverse().map((t) => t.id).concat(newestFirst.filter((id) => id !== goneAhead.id && id !== goneSeen.id)));
  });
});

describe("GetTrends", () => {
  it("counts distinct live tweets per hashtag over the sliding window, once per tweet however often events arrive", async () => {
    const tag = (s: string) => `tr${process.pid}${s}`;
    const [a, b, c] = [tag("a"), tag("b"), tag("c")];
    const mine = (all: Record<string, number>) => Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith(`tr${process.pid}`)));

    const a1 = await postOk(alice, `#${a} #${b} first`);
    const a2 = await postOk(bob, `#${a.toUpperCase()} again #${a}`); // one tweet, one count
    await postOk(alice, `#${a} #${c} third`);
    await postOk(bob, `and #${b}`);
    const posted = Date.now();
    await eventually(
      "the trends counted",
      async () => {
        expect(mine(await trends())).toEqual({ [a]: 3, [b]: 2, [c]: 1 });
        return true;
      },
      { timeoutMs: 5000 },
    );
    const order = Object.keys(mine(await trends()));
    expect(order).toEqual([a, b, c]);

    // A TweetCreated delivered again (a relay re-publishing after the duplicate window): counted once.
    const skippedBefore = await applied("consumer=trends,event=tweet_created,result=skipped");
    await redeliver(bob, EVENTS.tweetCreated.subject, a2.id, 1);
    await eventually("the redelivery skipped", async () => (await applied("consumer=trends,event=tweet_created,result=skipped")) === skippedBefore + 1, { timeoutMs: 5000 });
    expect(mine(await trends())).toEqual({ [a]: 3, [b]: 2, [c]: 1 });

    // A deleted tweet stops counting, once, however often its deletion (or creation) comes again.
    await deleteOk(alice, a1.id);
    await eventually(
      "the deleted tweet uncounted",
      async () => {
        const now = mine(await trends());
        return now[a] === 2 && now[b] === 1;
      },
      { timeoutMs: 5000 },
    );
    const deletesBefore = await applied("consumer=trends,event=tweet_deleted");
    await redeliver(alice, EVENTS.tweetDeleted.subject, a1.id, 2);
    await redeliver(alice, EVENTS.tweetCreated.subject, a1.id, 3);
    await eventually("the redelivered deletion applied", async () => (await applied("consumer=trends,event=tweet_deleted")) === deletesBefore + 1, { timeoutMs: 5000 });
    await eventually("the redelivered creation skipped", async () => (await applied("consumer=trends,event=tweet_created,result=skipped")) === skippedBefore + 2, { timeoutMs: 5000 });
    expect(mine(await trends())).toEqual({ [a]: 2, [c]: 1, [b]: 1 });
    // The index, too, keeps the deleted tweet out after the redelivered creation.
    expect(await postingsOf(a1.id)).toBe(0);

    // The window slides past them: the last of them leaves between one window
    // less a bucket and one window (plus polling) after it was created, which
    // is a little before PostTweet returned.
    await eventually("the window slid past them", async () => Object.keys(mine(await trends())).length === 0, { timeoutMs: TRENDS_WINDOW_MS + 5000 });
    expect(Date.now() - posted).toBeGreaterThanOrEqual(TRENDS_WINDOW_MS - TRENDS_BUCKET_MS - 500);
  });
});

describe("SearchTweets: a replica set down", () => {
  // This one kills rs1, so it runs on a cluster of its own: the file's
  // helpers (mesh, router) point at it while it runs.
  let own: TestSystem;
  let shared: { mesh: Mesh; router: ShardRouter } | undefined;
  beforeAll(async () => {
    own = await startSystem({ cluster: "own", env: { LOG_LEVEL: "error" } });
    shared = { mesh, router };
    ({ mesh, router } = own);
  });
  afterAll(async () => {
    if (shared !== undefined) ({ mesh, router } = shared);
    await own?.stop();
  });

  it("answers from the shards that are up and says which did not (partial), instead of failing or hiding it", async () => {
    // Authors on both replica sets, many tweets: their index rows and their tweet rows spread
    // over the shards. A post's id is minted with its lookup row on its author's shard, so a
    // tweet's index row (sharded by the tweet id) lives with its author too.
    const rs0 = new Set(router.shards().filter((s) => s.replicaSet === "rs0").map((s) => s.name));
    const authors = await Promise.all([signUp(), signUp(), signUp(), signUp(), signUp(), signUp()]);
    // At least one author on each replica set, or nothing, or everything, would stay reachable (1 in 32 otherwise).
    const on = (set: "rs0" | "rs1") => authors.some((a) => rs0.has(router.shardForUser(a.id).name) === (set === "rs0"));
    while (!on("rs0") || !on("rs1")) authors.push(await signUp());
    const word = `partial${process.pid}`;
    const posted: { id: string; author: Account }[] = [];
    for (let i = 0; i < 24; i++) {
      const author = authors[i % authors.length]!;
      posted.push({ id: (await postOk(author, `${word} ${i}`)).id, author });
    }
    await eventually("all 24 indexed", async () => (await searchOk(word, { pageSize: 100 })).tweets.length === 24);
    // Reachable after the kill: every tweet whose index row is on rs0. Its
    // tweet and its author come from the caches (warmed by the post and the
    // searches above), so an author living on rs1 does not hide it.
    const expected = posted
      .filter((p) => rs0.has(router.shardForUser(BigInt(p.id)).name))
      .map((p) => p.id)
      .reverse();
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(24);

    for (const p of own.infra.own!.processes.filter((p) => p.name.startsWith("rs1-"))) process.kill(p.pid, "SIGKILL");

    const page = await searchOk(word, { pageSize: 100 });
    expect(page.partial).toBe(true);
    expect(page.unavailableShards).toEqual(["80-c0", "c0-"]);
    expect(idsOf(page)).toEqual(expected);
    // A query that finds nothing on the live shards still says it may have missed some.
    expect(await searchOk(`${word} nowhere`)).toMatchObject({ tweets: [], partial: true, unavailableShards: ["80-c0", "c0-"] });
  });
});
