import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { thrownCode } from "../../lib/testing/in-memory.js";
import { MAX_QUERY_TERMS, canonicalQuery, parseQuery } from "./query.js";

const code = thrownCode;

describe("parseQuery", () => {
  it("reads words, phrases, hashtags, mentions and authors", () => {
    expect(parseQuery(`Café "new york" #Rust @Alice from:Bob_1 pizza`)).toEqual({
      terms: ["cafe", "pizza", "new", "york", "#rust"],
      phrases: [["new", "york"]],
      mentions: ["alice"],
      authors: ["bob_1"],
    });
  });

  it("makes a word of several tokens a phrase", () => {
    expect(parseQuery("don't e-mail").phrases).toEqual([
      ["don", "t"],
      ["e", "mail"],
    ]);
    expect(parseQuery("北京").phrases).toEqual([["北", "京"]]);
  });

  it("treats SQL and regex metacharacters as separators, never operators", () => {
    const q = parseQuery("100% a_b *x* 'q' \\n +y -z (w) .*v");
    expect([...q.terms].sort()).toEqual(["100", "a", "b", "n", "q", "v", "w", "x", "y", "z"]);
    expect(q.phrases).toEqual([["a", "b"]]);
  });

  it("reads # and @ as the tweet service writes hashtags and mentions", () => {
    // Fullwidth signs, accents folded, the tag ends where its characters end.
    expect(parseQuery("＃Café ＠Bob")).toMatchObject({ terms: ["#cafe"], mentions: ["bob"] });
    expect(parseQuery("#rust-lang").terms).toEqual(["lang", "#rust"]);
    expect(parseQuery("#rust_lang").terms).toEqual(["#rust_lang"]);
    // A tag needs a letter: "#123" is the number as a word.
    expect(parseQuery("#123")).toEqual({ terms: ["123"], phrases: [], mentions: [], authors: [] });
    // A handle ends at the first character that cannot be in one; an email address is text.
    expect(parseQuery("@bob's")).toMatchObject({ terms: ["s"], mentions: ["bob"] });
    expect(parseQuery("bob@example.com")).toMatchObject({ mentions: [], phrases: [["bob", "example", "com"]] });
    // Longer than a handle can be (15): text, not a mention.
    expect(parseQuery("@a_very_long_handle_x")).toMatchObject({ mentions: [], phrases: [["a", "very", "long", "handle", "x"]] });
    expect(parseQuery("FROM:Bob")).toMatchObject({ terms: [], authors: ["bob"] });
    // Inside quotes, # and @ are punctuation.
    expect(parseQuery(`"#rust @bob"`)).toMatchObject({ terms: ["rust", "bob"], phrases: [["rust", "bob"]], mentions: [] });
  });

  it("takes an unpaired quote as punctuation", () => {
    expect(parseQuery(`say "hello`)).toEqual({ terms: ["say", "hello"], phrases: [], mentions: [], authors: [] });
  });

  it("refuses queries with nothing to match", () => {
    for (const q of ["", "   ", "#", "@", "from:", `""`, "% * .*", "# @ from: ()", "\\"]) {
      expect(code(() => parseQuery(q)), JSON.stringify(q)).toBe(Code.InvalidArgument);
    }
  });

  it("refuses more than the maximum of distinct terms", () => {
    const words = Array.from({ length: MAX_QUERY_TERMS + 1 }, (_, i) => `w${i}`);
    expect(code(() => parseQuery(words.join(" ")))).toBe(Code.InvalidArgument);
    expect(parseQuery(words.slice(0, MAX_QUERY_TERMS).join(" ")).terms).toHaveLength(MAX_QUERY_TERMS);
  });

  it("has one canonical form for queries that parse alike", () => {
    expect(canonicalQuery(parseQuery("Café  #Rust"))).toBe(canonicalQuery(parseQuery("#rust cafe")));
    expect(canonicalQuery(parseQuery("cafe"))).not.toBe(canonicalQuery(parseQuery("#cafe")));
  });
});
