// Synthetic tweets for the search benchmarks (bench/search.ts,
// bench/search-fulltext.ts). Made from a seed, so tweet i can be made again
// from i alone, in any order and in any process.
import { firstIdAt } from "../lib/ids.js";
import { createRng as rng } from "../scripts/cli/rng.js";


/** Cumulative Zipf weights over ranks 1..n with exponent s, for sampling by binary search. */
function zipf(n: number, s: number): (r: number) => number {
  const cum = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cum[i] = sum += 1 / (i + 1) ** s;
  return (r) => {
    const x = r * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/**
 * The most common English words, first in the vocabulary, so the head of the
 * Zipf curve looks like real text: long posting lists for "the", "a", "to".
 */
export const COMMON = (
  "the a to i and of in is it you that for on my be this with me so have just not are at but was all like" +
  " we your do what get can if up no out now one its go love good day about time will how know new when people" +
  " they from today im more got see think back there really want make need much some great"
).split(" ");

export interface Synthetic {
  readonly tweetId: bigint;
  readonly authorId: bigint;
  readonly text: string;
  readonly words: readonly string[];
  readonly hashtags: readonly string[];
  readonly mentions: readonly bigint[];
}

export interface SyntheticTweets {
  /** COMMON, then made-up words of 3-10 letters (5 % with an accent). */
  readonly vocabulary: readonly string[];
  /** Tweet i (0 <= i < n): ids rise with i, over the last 30 days. */
  tweet(i: number): Synthetic;
  tweetId(i: number): bigint;
  userId(u: number): bigint;
}

/**
 * n tweets of 6-20 words drawn Zipf(1.05) over 30 000 words, a hashtag in
 * 30 % (Zipf over 3 000, two in a third of those), a mention in 15 %,
 * authors Zipf(0.8) over `users`.
 */
export function syntheticTweets(opts: { readonly n: number; readonly users: number; readonly seed: number }): SyntheticTweets {
  const { n, users, seed } = opts;
  const vocabulary: string[] = [...COMMON];
  const r = rng(seed);
  const syllables = "ka ri to mu sen la de vo pi nor el ta qua zi be ro fa lu mi sta an co pe tri ve ul go na xi ber".split(" ");
  const accents: Record<string, string> = { e: "é", a: "à", o: "ö", u: "ü" };
  const seen = new Set(vocabulary);
  while (vocabulary.length < 30_000) {
    let w = "";
    const parts = 1 + Math.floor(r() * 4);
    for (let i = 0; i < parts; i++) w += syllables[Math.floor(r() * syllables.length)];
    if (r() < 0.05) w = w.replace(/[eaou]/, (c) => accents[c] ?? c);
    if (w.length >= 3 && !seen.has(w)) {
      seen.add(w);
      vocabulary.push(w);
    }
  }
  const pickWord = zipf(vocabulary.length, 1.05);
  const tags = Array.from({ length: 3000 }, (_, i) => `tag${i.toString(36)}${vocabulary[100 + i]}`);
  const pickTag = zipf(tags.length, 1.1);
  const pickUser = zipf(users, 0.8);
  const userId = (u: number): bigint => 1_000_000_000n + BigInt(u);
  const t0 = Date.now() - 30 * 86_400_000;
  const stepMs = Math.max(1, Math.floor((30 * 86_400_000 - 60_000) / n));
  const tweetId = (i: number): bigint => firstIdAt(t0 + i * stepMs) + 1n;

  const tweet = (i: number): Synthetic => {
    const rr = rng(seed * 0x9e3779b1 + i);
    const length = 6 + Math.floor(rr() * 15);
    const words: string[] = [];
    for (let k = 0; k < length; k++) words.push(vocabulary[pickWord(rr())]!);
    const hashtags: string[] = [];
    if (rr() < 0.3) for (let k = rr() < 0.3 ? 2 : 1; k > 0; k--) hashtags.push(tags[pickTag(rr())]!);
    const mentions: bigint[] = [];
    const mentionWords: string[] = [];
    if (rr() < 0.15) {
      const u = pickUser(rr());
      mentions.push(userId(u));
      mentionWords.push(`@u${u}`);
    }
    const text = [...mentionWords, ...words, ...hashtags.map((t) => `#${t}`)].join(" ");
    return { tweetId: tweetId(i), authorId: userId(pickUser(rr())), text, words, hashtags, mentions };
  };
  return { vocabulary, tweet, tweetId, userId };
}
