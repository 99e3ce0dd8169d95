import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DOC_PATH, introOf, matchDescriptions, parseDescriptions, renderReference } from "./config-reference.js";

describe("docs/configuration.md", () => {
  const existing = readFileSync(DOC_PATH, "utf8");
  const reference = renderReference(introOf(existing));

  it("describes every setting the loaders read, and only those", () => {
    expect(reference.problems).toEqual([]);
  });

  it("is what the loaders say", () => {
    expect(existing, "docs/configuration.md differs from the config loaders: run `npm run docs:config`").toBe(reference.text);
  });

  it("keeps its hand-written head", () => {
    expect(reference.text.startsWith(introOf(existing))).toBe(true);
  });
});

describe("parseDescriptions", () => {
  it("takes doc comments and doc-comment paragraphs that start with a setting's name", () => {
    const source = `
      /** CHIRP_A_MS: how long a
       * thing waits. */
      /**
       * What the field is, for the code's reader.
       *
       * CHIRP_<SERVICE>_B: one per service.
       *
       * CHIRP_C, and prose that merely starts with a name.
       */
      // CHIRP_D: a line comment is not a description.
    `;
    const found = parseDescriptions(source, "x.ts");
    expect(found.map((d) => [d.name, d.text])).toEqual([
      ["CHIRP_A_MS", "how long a thing waits."],
      ["CHIRP_<SERVICE>_B", "one per service."],
    ]);
    expect(found[1]!.pattern?.test("CHIRP_USER_B")).toBe(true);
    expect(found[1]!.pattern?.test("CHIRP_B")).toBe(false);
  });

  it("reads `<A|B>` as one of its words", () => {
    const [d] = parseDescriptions("/** CHIRP_RATE_<CLASS>_<USER|IP>: a bucket. */", "x.ts");
    expect(["CHIRP_RATE_READ_USER", "CHIRP_RATE_READ_IP", "CHIRP_RATE_READ_IPS"].map((n) => d!.pattern!.test(n))).toEqual([true, true, false]);
  });
});

describe("matchDescriptions", () => {
  const described = [
    ...parseDescriptions("/** CHIRP_A: a. */ /** CHIRP_<SERVICE>_ADDR: where. */ /** CHIRP_USER_ADDR: the user's own. */", "a.ts"),
    ...parseDescriptions("/** CHIRP_GONE: read by nothing. */", "b.ts"),
  ];
  const reads = (...names: string[]) => new Map(names.map((n) => [n, new Map([["services", []]])]));

  it("fails a setting read without a description, and a description nothing reads", () => {
    const { problems } = matchDescriptions(reads("CHIRP_A", "CHIRP_NEW", "CHIRP_USER_ADDR", "CHIRP_TWEET_ADDR"), described);
    expect(problems).toHaveLength(2);
    expect(problems.find((p) => p.startsWith("CHIRP_NEW "))).toMatch(/described nowhere/);
    expect(problems.find((p) => p.startsWith("CHIRP_GONE "))).toMatch(/no loader reads it/);
  });

  it("prefers a setting's own description to its family's", () => {
    const { placed } = matchDescriptions(reads("CHIRP_USER_ADDR", "CHIRP_TWEET_ADDR"), described);
    expect(placed.get("CHIRP_USER_ADDR")?.text).toBe("the user's own.");
    expect(placed.get("CHIRP_TWEET_ADDR")?.text).toBe("where.");
  });

  it("fails a name described twice", () => {
    const twice = [...described, ...parseDescriptions("/** CHIRP_A: again. */", "c.ts")];
    expect(matchDescriptions(reads("CHIRP_A"), twice).problems.some((p) => p.includes("described twice"))).toBe(true);
  });
});
