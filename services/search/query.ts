// The query language of SearchTweets, parsed into what must match. Every part
// must match (AND); there is no OR, no negation and no wildcard.
//
//   word          the folded token in the text (analyze.ts)
//   "some words"  those tokens adjacent and in order
//   #tag          the hashtag
//   @handle       a mention of that user
//   from:handle   written by that user
//
// A word that folds into several tokens (`don't`, `e-mail`, `北京`) is a
// phrase of them. Characters that are not letters, marks or digits separate
// tokens and mean nothing else: `%`, `_`, `*`, `'`, `\`, `+`, `-`, `(`, `)`,
// `.*` never reach the database as anything but absent. A `"` without a
// partner is such a character too.
import { Code, ConnectError } from "@connectrpc/connect";
import { clampTerm, hashtagTerm, tokenize } from "./analyze.js";

/** Distinct terms a query may ask for (each is one join on a shard). */
export const MAX_QUERY_TERMS = 16;

export interface ParsedQuery {
  /** Posting terms that need no lookup: words (including phrase tokens) and hashtags. */
  readonly terms: readonly string[];
  /** Phrases as token lists (two or more tokens each). */
  readonly phrases: readonly (readonly string[])[];
  /** Handles (lower-cased, without "@") whose mentions must match. */
  readonly mentions: readonly string[];
  /** Handles (lower-cased) that must be the author. */
  readonly authors: readonly string[];
}

const HANDLE_AT_START = /^[A-Za-z0-9_]{1,15}(?![A-Za-z0-9_])/u;
const TAG_AT_START = /^[\p{L}\p{M}\p{N}_]+/u;
const HAS_LETTER = /[\p{L}\p{M}]/u;
const FROM = /^from:/iu;

/**
 * Parses a query. InvalidArgument when nothing in it can match anything
 * (white space, punctuation, operators without an argument) or when it asks
 * for more than MAX_QUERY_TERMS terms.
 */
export function parseQuery(query: string): ParsedQuery {
  const words: string[] = [];
  const phrases: string[][] = [];
  const tags: string[] = [];
  const mentions: string[] = [];
  const authors: string[] = [];

  const addText = (text: string): void => {
    const tokens = tokenize(text);
    if (tokens.length === 1) words.push(tokens[0]!);
    else if (tokens.length > 1) phrases.push(tokens);
  };

  const addChunk = (chunk: string): void => {
    const first = chunk[0];
    if (first === "#" || first === "＃") {
      const tag = TAG_AT_START.exec(chunk.slice(1))?.[0];
      // "#123" is no hashtag (the tweet service's rule): the number is text.
      if (tag !== undefined && HAS_LETTER.test(tag)) {
        tags.push(hashtagTerm(tag));
        addText(chunk.slice(1 + tag.length));
      } else addText(chunk.slice(1));
      return;
    }
    if (first === "@" || first === "＠") {
      const handle = HANDLE_AT_START.exec(chunk.slice(1))?.[0];
      if (handle !== undefined) {
        mentions.push(handle.toLowerCase());
        addText(chunk.slice(1 + handle.length));
      } else addText(chunk.slice(1));
      return;
    }
    if (FROM.test(chunk)) {
      const rest = chunk.slice(5);
      const handle = HANDLE_AT_START.exec(rest)?.[0];
      if (handle !== undefined) {
        authors.push(handle.toLowerCase());
        addText(rest.slice(handle.length));
      } else addText(rest);
      return;
    }
    addText(chunk);
  };

  // Chunks are separated by white space; a quoted phrase may hold white space.
  let i = 0;
  const n = query.length;
  while (i < n) {
    const c = query[i]!;
    if (/\s/u.test(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      const close = query.indexOf('"', i + 1);
      if (close > i) {
        addText(query.slice(i + 1, close));
        i = close + 1;
      } else i++; // an unpaired quote is punctuation
      continue;
    }
    let j = i;
    while (j < n && query[j] !== '"' && !/\s/u.test(query[j]!)) j++;
    addChunk(query.slice(i, j));
    i = j;
  }

  const terms = unique([...words.map(clampTerm), ...phrases.flat().map(clampTerm), ...tags]);
  const parsed: ParsedQuery = {
    terms,
    phrases: uniqueBy(phrases, (p) => p.join(" ")),
    mentions: unique(mentions),
    authors: unique(authors),
  };
  const count = parsed.terms.length + parsed.mentions.length + parsed.authors.length;
  if (count === 0) throw new ConnectError("query has no words, hashtags or handles to search for", Code.InvalidArgument);
  if (count > MAX_QUERY_TERMS) throw new ConnectError(`query has more than ${MAX_QUERY_TERMS} distinct terms`, Code.InvalidArgument);
  return parsed;
}

/**
 * A stable string for "the same query": page tokens are bound to it. Two
 * spellings that parse alike (`Café  #Rust`, `cafe #rust`) are the same query.
 */
export function canonicalQuery(q: ParsedQuery): string {
  return JSON.stringify([
    [...q.terms].sort(),
    q.phrases.map((p) => p.join(" ")).sort(),
    [...q.mentions].sort(),
    [...q.authors].sort(),
  ]);
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

function uniqueBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item);
  return [...seen.values()];
}
