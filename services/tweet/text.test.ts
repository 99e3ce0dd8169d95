import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { countChars, parseTweetText } from "./text.js";

function codeOf(fn: () => unknown): Code | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("parseTweetText: length", () => {
  it("counts user-perceived characters after NFC", () => {
    // e + combining acute: two code points, one character, composed by NFC.
    const decomposed = "e\u0301".repeat(280);
    const parsed = parseTweetText(decomposed, false);
    expect(parsed.chars).toBe(280);
    expect(parsed.text).toBe("\u00e9".repeat(280));
    // A family emoji is 7 code points and one character.
    const family = "\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}";
    expect(countChars(family)).toBe(1);
    expect(parseTweetText(family.repeat(280), false).chars).toBe(280);
    // Regional indicator pairs (flags) are one character each.
    expect(parseTweetText("\u{1F1EB}\u{1F1F7}".repeat(280), false).chars).toBe(280);
  });

  it("counts ASCII text (its fast path) as Intl.Segmenter does, CR LF as one character", () => {
    const segmenter = new Intl.Segmenter("und", { granularity: "grapheme" });
    const clusters = (t: string): number => [...segmenter.segment(t)].length;
    const pieces = ["a", " ", "\r", "\n", "\t", "\r\n", "\n\r", "\u0001", "~", "\u007f", "\r\r\n"];
    for (let i = 0; i < 3000; i++) {
      let text = "";
      for (let j = 0; j < i % 11; j++) text += pieces[(i * 31 + j * 17 + (i >> 3)) % pieces.length];
      expect(countChars(text)).toBe(clusters(text));
    }
    expect(countChars("a\r\nb")).toBe(3);
    expect(countChars("caf\u00e9 \r\n")).toBe(clusters("caf\u00e9 \r\n"));
  });

  it("accepts 1 and 280 characters, refuses 0 (without media) and 281", () => {
    expect(parseTweetText("x", false).chars).toBe(1);
    expect(parseTweetText("x".repeat(280), false).chars).toBe(280);
    expect(codeOf(() => parseTweetText("x".repeat(281), false))).toBe(Code.InvalidArgument);
    expect(codeOf(() => parseTweetText("e\u0301".repeat(281), false))).toBe(Code.InvalidArgument);
    expect(codeOf(() => parseTweetText("", false))).toBe(Code.InvalidArgument);
    expect(codeOf(() => parseTweetText("   \n\t ", false))).toBe(Code.InvalidArgument);
  });

  it("allows empty text with media", () => {
    expect(parseTweetText("", true)).toMatchObject({ text: "", chars: 0 });
    expect(parseTweetText("  ", true)).toMatchObject({ text: "", chars: 0 });
  });

  it("trims surrounding white space and counts what is kept", () => {
    const parsed = parseTweetText(`  ${"y".repeat(280)}\n`, false);
    expect(parsed.text).toBe("y".repeat(280));
  });
});

describe("parseTweetText: control and format characters", () => {
  it("refuses text made only of control or format characters, with or without media", () => {
    for (const t of ["\u200B", "\u200B\u200C\u200D", "\u2066\u2069", "\u00AD", "\u200E \u200F", "\uFEFF\u200B"]) {
      expect(codeOf(() => parseTweetText(t, false)), JSON.stringify(t)).toBe(Code.InvalidArgument);
      expect(codeOf(() => parseTweetText(t, true)), JSON.stringify(t)).toBe(Code.InvalidArgument);
    }
    for (const t of ["\u0000", "\u0001\u0002", "\u007F", "\u0085\u009F"]) {
      expect(codeOf(() => parseTweetText(t, false)), JSON.stringify(t)).toBe(Code.InvalidArgument);
    }
  });

  it("refuses control characters among text, but keeps tabs and line breaks", () => {
    expect(codeOf(() => parseTweetText("hello\u0000world", false))).toBe(Code.InvalidArgument);
    expect(codeOf(() => parseTweetText("bell\u0007", false))).toBe(Code.InvalidArgument);
    expect(parseTweetText("line one\r\nline\ttwo", false).text).toBe("line one\r\nline\ttwo");
  });

  it("keeps format characters inside visible text (joiners, direction marks)", () => {
    expect(parseTweetText("\u05E9\u05DC\u05D5\u05DD\u200F!", false).chars).toBe(6);
  });

  it("refuses lone surrogates", () => {
    expect(codeOf(() => parseTweetText("a\uD800b", false))).toBe(Code.InvalidArgument);
  });
});

describe("parseTweetText: entities", () => {
  it("finds hashtags, each once, in order, not inside words, URLs or numbers", () => {
    const p = parseTweetText("#Chirp is #fun! #chirp again, a#b, #123 no, #v2 yes, #日本語 and #café https://x.com/#frag", false);
    expect(p.hashtags).toEqual(["Chirp", "fun", "v2", "日本語", "café"]);
  });

  it("finds mentions of valid handles, each once, not in e-mail addresses or URLs", () => {
    const p = parseTweetText(
      "hi @alice and @Bob_1, @ALICE again; mail me at x@example.com; @way_too_long_handle_here no; @a@b no; https://m.social/@carol (@dave)",
      false,
    );
    expect(p.mentionHandles).toEqual(["alice", "Bob_1", "dave"]);
    expect(parseTweetText("@" + "a".repeat(15), false).mentionHandles).toEqual(["a".repeat(15)]);
    expect(parseTweetText("@" + "a".repeat(16), false).mentionHandles).toEqual([]);
  });

  it("finds http(s) URLs without the punctuation that ends a sentence", () => {
    const p = parseTweetText(
      "see https://example.com/a?b=1. and (http://en.wikipedia.org/wiki/Foo_(bar)) or https://example.com/a?b=1, ftp://no.example",
      false,
    );
    expect(p.urls).toEqual(["https://example.com/a?b=1", "http://en.wikipedia.org/wiki/Foo_(bar)"]);
  });
});
