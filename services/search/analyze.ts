// How text becomes index terms. The same functions read tweets (index side)
// and queries (search side), so whatever a query asks for is spelled the way
// the index wrote it. Pure functions, unit-tested in analyze.test.ts.
//
// - Folding: lower case, then compatibility decomposition (NFKD: fullwidth
//   letters, ligatures), then the Latin/Greek/Cyrillic combining diacritics
//   are dropped (é -> e, ñ -> n, ё -> е), then NFC again (Hangul syllables
//   come back whole). A few letters that carry their "accent" in the letter
//   itself are spelled out (ß -> ss, æ -> ae, ø -> o, ł -> l, ...). Marks of
//   other scripts (Devanagari vowel signs, Arabic harakat) are kept: there
//   they are part of the word, not an accent.
// - Tokens: runs of letters, marks and digits. Everything else (spaces,
//   punctuation, symbols, `_`, emoji) separates tokens and is not indexed,
//   so no character is ever an operator of the storage engine. Every token is
//   indexed, however short and however common: there is no stopword list and
//   no minimum length.
// - Han, Hiragana and Katakana are written without spaces between words, so
//   each of their characters is a token of its own, and a query word made of
//   several of them is matched as a phrase (adjacent, in order).

/** Longest term in bytes (search_postings.term is VARBINARY(100)). */
export const MAX_TERM_BYTES = 100;

const DIACRITICS = /[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]/gu;
const SPELLED_OUT: Readonly<Record<string, string>> = {
  ß: "ss",
  æ: "ae",
  œ: "oe",
  ø: "o",
  đ: "d",
  ð: "d",
  þ: "th",
  ł: "l",
  ı: "i",
  ħ: "h",
  ŧ: "t",
};
const SPELLED_OUT_RE = new RegExp(`[${Object.keys(SPELLED_OUT).join("")}]`, "gu");
const IDEOGRAPHIC = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/gu;
const TOKEN = /[\p{L}\p{M}\p{N}]+/gu;

/** Case- and accent-folded text (see the module comment). */
export function fold(text: string): string {
  return text
    .toLowerCase()
    .normalize("NFKD")
    .replace(DIACRITICS, "")
    .normalize("NFC")
    .replace(SPELLED_OUT_RE, (c) => SPELLED_OUT[c] ?? c);
}

/** The tokens of already folded text, in order, repeats kept. */
export function tokensOfFolded(folded: string): string[] {
  return folded.replace(IDEOGRAPHIC, " $& ").match(TOKEN) ?? [];
}

/** The tokens of `text`, folded, in order, repeats kept. */
export function tokenize(text: string): string[] {
  return tokensOfFolded(fold(text));
}

/**
 * A term cut to MAX_TERM_BYTES on a code point boundary. Both sides cut the
 * same way, so a very long word still finds itself (and the few words that
 * share its first 100 bytes).
 */
export function clampTerm(term: string): string {
  if (Buffer.byteLength(term) <= MAX_TERM_BYTES) return term;
  let out = "";
  let bytes = 0;
  for (const ch of term) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_TERM_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** A hashtag's term: `#` and the folded tag (letters, marks, digits and `_`). */
export function hashtagTerm(tag: string): string {
  return clampTerm(`#${fold(tag.replace(/^[#＃]/u, ""))}`);
}

export function mentionTerm(userId: bigint): string {
  return `@${userId}`;
}

export function authorTerm(userId: bigint): string {
  return `from:${userId}`;
}

/** The phrase needle for adjacent tokens: matched with INSTR against a doc's body. */
export function phraseNeedle(tokens: readonly string[]): string {
  return ` ${tokens.join(" ")} `;
}

export interface TweetDocument {
  /** ` token token ... ` (search_docs.body). */
  readonly body: string;
  /** Every posting term, each once. */
  readonly terms: readonly string[];
}

/** What the index stores for a tweet. */
export function analyzeTweet(tweet: {
  readonly text: string;
  readonly authorId: bigint;
  readonly hashtags: readonly string[];
  readonly mentions: readonly bigint[];
}): TweetDocument {
  const tokens = tokenize(tweet.text);
  const terms = new Set<string>();
  for (const t of tokens) terms.add(clampTerm(t));
  for (const tag of tweet.hashtags) {
    const term = hashtagTerm(tag);
    if (term.length > 1) terms.add(term);
  }
  for (const id of tweet.mentions) terms.add(mentionTerm(id));
  terms.add(authorTerm(tweet.authorId));
  return { body: tokens.length === 0 ? "" : phraseNeedle(tokens), terms: [...terms] };
}
