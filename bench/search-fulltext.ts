/**
 * Why the search index is not InnoDB FULLTEXT: the same synthetic tweets in a
 * FULLTEXT table and in our posting table, on one MariaDB server, asked for
 * the newest 21 matches of the same words.
 *
 *   node --import tsx bench/search-fulltext.ts [--tweets 250000] [--runs 30]
 *
 * Both tables live in a scratch database on rs0's primary of a private
 * cluster, made with the admin account. The FULLTEXT table holds the tweet
 * text under the server's defaults (innodb_ft_min_token_size 3, the built-in
 * stopwords, utf8mb4_unicode_ci); the posting table is search_postings' shape,
 * filled by the service's analyzer, in key order. Each query runs --runs
 * times; the median is printed with how many tweets match.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createConnection } from "mysql2/promise";
import { startLocalCluster } from "../devcluster/index.js";
import { analyzeTweet, tokenize } from "../services/search/analyze.js";
import { COMMON, syntheticTweets } from "./search-data.js";

const { values: args } = parseArgs({
  options: {
    tweets: { type: "string", default: "250000" },
    runs: { type: "string", default: "30" },
    out: { type: "string", default: "bench/results/search-fulltext.json" },
  },
});
const N = Number(args.tweets);
const RUNS = Number(args.runs);
const say = (line: string): void => console.error(`[bench] ${line}`);

const cluster = await startLocalCluster({ ephemeral: true, log: () => {} });
const primary = cluster.mysql.replicaSets[0]!.primary;
const db = await createConnection({ host: primary.host, port: primary.port, ...cluster.mysql.adminUser, supportBigNumbers: true, bigNumberStrings: true });
const data = syntheticTweets({ n: N, users: 100_000, seed: 7 });

try {
  await db.query("CREATE DATABASE ft_compare");
  await db.query("CREATE TABLE ft_compare.ft_docs (tweet_id BIGINT UNSIGNED NOT NULL PRIMARY KEY, body TEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci");
  await db.query("CREATE TABLE ft_compare.postings (term VARBINARY(100) NOT NULL, tweet_id BIGINT UNSIGNED NOT NULL, PRIMARY KEY (term, tweet_id)) ENGINE=InnoDB");

  say(`loading ${N.toLocaleString()} tweets...`);
  const keys: [string, number][] = [];
  for (let i = 0; i < N; i += 1000) {
    const rows: [string, string][] = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) {
      const t = data.tweet(j);
      rows.push([t.tweetId.toString(), t.text]);
      for (const term of analyzeTweet(t).terms) keys.push([term, j]);
    }
    await db.query("INSERT INTO ft_compare.ft_docs (tweet_id, body) VALUES ?", [rows]);
  }
  keys.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])) || a[1] - b[1]);
  for (let i = 0; i < keys.length; i += 5000) {
    await db.query("INSERT INTO ft_compare.postings (term, tweet_id) VALUES ?", [keys.slice(i, i + 5000).map(([term, j]) => [term, data.tweetId(j).toString()])]);
  }
  say(`building the FULLTEXT index...`);
  const ftStart = performance.now();
  await db.query("ALTER TABLE ft_compare.ft_docs ADD FULLTEXT KEY ft_body (body)");
  const ftBuildS = (performance.now() - ftStart) / 1000;
  const [vars] = (await db.query("SELECT @@innodb_ft_min_token_size AS min_token, @@innodb_ft_enable_stopword AS stopwords, @@version AS version")) as unknown as [
    { min_token: string; stopwords: string; version: string }[],
  ];

  const vocab = data.vocabulary;
  const cases: { name: string; words: string[] }[] = [
    { name: `stopword "the"`, words: ["the"] },
    { name: `two letters "go"`, words: ["go"] },
    { name: `common "love"`, words: ["love"] },
    { name: `common "people"`, words: ["people"] },
    { name: `rank 200 "${vocab[200]}"`, words: [vocab[200]!] },
    { name: `rank 2000 "${vocab[2000]}"`, words: [vocab[2000]!] },
    { name: `rank 20000 "${vocab[20000]}"`, words: [vocab[20000]!] },
    { name: `"love" + "good"`, words: ["love", "good"] },
    { name: `"people" + rank 200`, words: ["people", vocab[200]!] },
  ];
  if (!COMMON.includes("love")) throw new Error("vocabulary changed");

  const median = async (sql: string, params: unknown[]): Promise<{ ms: number; hits: number }> => {
    const times: number[] = [];
    let hits = 0;
    for (let r = 0; r < RUNS; r++) {
      const t0 = performance.now();
      const [rows] = (await db.query(sql, params)) as unknown as [unknown[]];
      times.push(performance.now() - t0);
      hits = rows.length;
    }
    times.sort((a, b) => a - b);
    return { ms: +times[Math.floor(times.length / 2)]!.toFixed(2), hits };
  };

  const results = [];
  for (const c of cases) {
    const terms = c.words.flatMap((w) => tokenize(w));
    const [[{ n }]] = (await db.query(
      `SELECT COUNT(*) AS n FROM ft_compare.postings p0 ${terms.slice(1).map((_, i) => `JOIN ft_compare.postings p${i + 1} ON p${i + 1}.term = ? AND p${i + 1}.tweet_id = p0.tweet_id`).join(" ")} WHERE p0.term = ?`,
      [...terms.slice(1), terms[0]],
    )) as unknown as [[{ n: string }]];
    const ft = await median("SELECT tweet_id FROM ft_compare.ft_docs WHERE MATCH(body) AGAINST (? IN BOOLEAN MODE) ORDER BY tweet_id DESC LIMIT 21", [
      c.words.map((w) => `+${w}`).join(" "),
    ]);
    const ours = await median(
      `SELECT STRAIGHT_JOIN p0.tweet_id FROM ft_compare.postings p0 ${terms
        .slice(1)
        .map((_, i) => `JOIN ft_compare.postings p${i + 1} ON p${i + 1}.term = ? AND p${i + 1}.tweet_id = p0.tweet_id`)
        .join(" ")} WHERE p0.term = ? ORDER BY p0.tweet_id DESC LIMIT 21`,
      [...terms.slice(1), terms[0]],
    );
    results.push({ query: c.name, matching: Number(n), fulltextMs: ft.ms, fulltextHits: ft.hits, postingsMs: ours.ms, postingsHits: ours.hits });
    say(`  ${c.name}: ${n} match; FULLTEXT ${ft.ms} ms (${ft.hits} hits), postings ${ours.ms} ms (${ours.hits} hits)`);
  }

  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  console.log(
    [
      `newest 21 matches over ${N.toLocaleString()} tweets on one server (${vars[0]?.version}; innodb_ft_min_token_size ${vars[0]?.min_token}, stopwords ${vars[0]?.stopwords === "1" ? "on" : "off"}); median of ${RUNS}`,
      line(["query", "tweets matching", "FULLTEXT ms", "FULLTEXT hits", "postings ms", "postings hits"]),
      line(["---", "---", "---", "---", "---", "---"]),
      ...results.map((r) => line([r.query, r.matching, r.fulltextMs, r.fulltextHits, r.postingsMs, r.postingsHits])),
      "",
      `FULLTEXT index built in ${ftBuildS.toFixed(0)} s`,
    ].join("\n"),
  );
  writeFileSync(
    args.out,
    `${JSON.stringify({ benchmark: "search-fulltext", date: new Date().toISOString(), tweets: N, runs: RUNS, server: vars[0], fulltextBuildSeconds: Math.round(ftBuildS), results }, null, 2)}\n`,
  );
} finally {
  await db.end();
  await cluster.stop();
}
