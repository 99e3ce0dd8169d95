import { describe, expect, it } from "vitest";
import { MAX_TERM_BYTES, analyzeTweet, clampTerm, fold, hashtagTerm, tokenize } from "./analyze.js";

describe("fold", () => {
  it("drops case and Latin, Greek and Cyrillic accents, composed or not", () => {
    expect(fold("Crème BRÛLÉE")).toBe("creme brulee");
    expect(fold("Cre\u0300me")).toBe("creme");
    expect(fold("ÅNGSTRÖM Ñandú")).toBe("angstrom nandu");
    expect(fold("Ελλάδα")).toBe("ελλαδα");
    expect(fold("Ёлка")).toBe("елка");
  });

  it("spells out letters whose accent is part of the letter, and unfolds compatibility forms", () => {
    expect(fold("Straße Æther Øresund Łódź")).toBe("strasse aether oresund lodz");
    expect(fold("ＡＢＣ ﬁne")).toBe("abc fine");
    expect(fold("İstanbul")).toBe("istanbul");
  });

  it("keeps the marks that make up words in other scripts, and Hangul whole", () => {
    expect(fold("हिन्दी")).toBe("हिन्दी");
    expect(fold("한국어")).toBe("한국어");
  });
});

describe("tokenize", () => {
  it("splits on everything but letters, marks and digits; keeps short words and stopwords", () => {
    expect(tokenize("I'm at the café, a 100% OK!")).toEqual(["i", "m", "at", "the", "cafe", "a", "100", "ok"]);
    expect(tokenize("foo_bar e-mail x.y")).toEqual(["foo", "bar", "e", "mail", "x", "y"]);
  });

  it("makes every Han, Hiragana and Katakana character a token", () => {
    // (the long vowel mark ー is a letter of no one script: a token of its own between them)
    expect(tokenize("東京タワーへ行く")).toEqual(["東", "京", "タ", "ワ", "ー", "へ", "行", "く"]);
  });

  it("finds nothing in punctuation and symbols", () => {
    expect(tokenize(`% _ * ' " \\ + - ( ) .* 🎉`)).toEqual([]);
  });
});

describe("terms", () => {
  it("clamps long terms on a code point boundary", () => {
    const long = "é".repeat(80);
    const clamped = clampTerm(long);
    expect(Buffer.byteLength(clamped)).toBeLessThanOrEqual(MAX_TERM_BYTES);
    expect(clamped).toBe("é".repeat(50));
  });

  it("folds hashtags like words", () => {
    expect(hashtagTerm("#CaféLife")).toBe("#cafelife");
    expect(hashtagTerm("rust_lang")).toBe("#rust_lang");
  });

  it("indexes words, hashtags, mentions and the author once each, and a body for phrases", () => {
    const doc = analyzeTweet({ text: "Hello #Rust hello @bob", authorId: 7n, hashtags: ["Rust"], mentions: [42n] });
    expect(doc.body).toBe(" hello rust hello bob ");
    expect([...doc.terms].sort()).toEqual(["#rust", "@42", "bob", "from:7", "hello", "rust"].sort());
  });

  it("indexes a tweet without text by its author", () => {
    expect(analyzeTweet({ text: "", authorId: 7n, hashtags: [], mentions: [] })).toEqual({ body: "", terms: ["from:7"] });
  });
});
