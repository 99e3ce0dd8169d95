import { create, ScalarType, toJsonString, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetHomeTimelineResponseSchema } from "../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetSchema } from "../gen/chirp/tweet/v1/tweet_pb.js";
import { MediaKind, MediaSchema } from "../gen/chirp/media/v1/media_pb.js";
import { UserSchema } from "../gen/chirp/user/v1/user_pb.js";
import { GetUserRequestSchema } from "../gen/chirp/user/v1/user_service_pb.js";
import { compileJsonEncoder } from "./fast-json.js";
import { PUBLIC_API } from "./public-api.js";

// The gateway's JSON options (server.ts).
const OPTIONS = { alwaysEmitImplicit: true };
const generic = (desc: DescMessage, message: unknown): string => toJsonString(desc, message as never, OPTIONS);

/** A small deterministic generator (mulberry32), so a failure repeats. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = ["", "a", 'quote " and \\ backslash', "line\nbreak\ttab\u0000nul\u001f", "héllo wörld", "日本語のテキスト", "emoji 🐦🔥", "lone \ud800 surrogate", "\u2028\u2029", "</script>"];

function randomValue(f: DescField, r: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const scalar = (type: ScalarType): unknown => {
    switch (type) {
      case ScalarType.STRING:
        return pick(STRINGS);
      case ScalarType.BOOL:
        return r() < 0.5;
      case ScalarType.DOUBLE:
      case ScalarType.FLOAT:
        return pick([0, -0, 1.5, -90, 180, 3.141592653589793, 1e21, 5e-324, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
      case ScalarType.UINT64:
      case ScalarType.FIXED64:
        return pick([0n, 1n, 1234567890123456789n, 18446744073709551615n]);
      case ScalarType.INT64:
      case ScalarType.SFIXED64:
      case ScalarType.SINT64:
        return pick([0n, -1n, 9223372036854775807n, -9223372036854775808n]);
      case ScalarType.BYTES:
        return pick([new Uint8Array(), new Uint8Array([0, 255, 62, 63]), new Uint8Array([1, 2, 3, 4, 5])]);
      case ScalarType.UINT32:
      case ScalarType.FIXED32:
        return pick([0, 1, 4294967295]);
      default:
        return pick([0, -1, 2147483647, -2147483648]);
    }
  };
  const single = (kind: "scalar" | "enum" | "message", desc: DescField): unknown => {
    if (kind === "enum") return pick([...desc.enum!.values.map((v) => v.number), 99]);
    if (kind === "message") return randomMessage(desc.message!, r, depth + 1);
    return scalar(desc.scalar!);
  };
  switch (f.fieldKind) {
    case "list": {
      const n = depth > 2 ? 0 : Math.floor(r() * 4);
      return Array.from({ length: n }, () => single(f.listKind, f));
    }
    case "message":
      return depth > 2 || r() < 0.3 ? undefined : randomMessage(f.message, r, depth + 1);
    case "enum":
      return single("enum", f);
    case "scalar":
      return scalar(f.scalar);
    default:
      return undefined;
  }
}

function randomMessage(desc: DescMessage, r: () => number, depth = 0): unknown {
  if (desc.typeName === "google.protobuf.Timestamp") {
    const seconds = [0n, 1_764_979_200n, -62_135_596_800n, 253_402_300_799n][Math.floor(r() * 4)]!;
    const nanos = [0, 1_000_000, 123_000_000, 123_456_000, 123_456_789, 999_999_999][Math.floor(r() * 6)]!;
    return create(desc, { seconds, nanos } as never);
  }
  if (desc.typeName === "google.protobuf.Duration") {
    const [seconds, nanos] = [[0n, 0], [1n, 500_000_000], [0n, -250_000], [-3n, -1], [315_576_000_000n, 0]][Math.floor(r() * 5)]!;
    return create(desc, { seconds, nanos } as never);
  }
  const init: Record<string, unknown> = {};
  for (const f of desc.fields) {
    const v = randomValue(f, r, depth);
    if (v !== undefined) init[f.localName] = v;
  }
  return create(desc, init as never);
}

/** Every message type a public unary method answers, and those they contain. */
function publicResponseTypes(): DescMessage[] {
  const seen = new Map<string, DescMessage>();
  const visit = (d: DescMessage): void => {
    if (seen.has(d.typeName)) return;
    seen.set(d.typeName, d);
    for (const f of d.fields) if (f.message !== undefined) visit(f.message);
  };
  for (const { service, methods } of PUBLIC_API) {
    for (const m of service.methods) if (methods.includes(m.name) && m.methodKind === "unary") visit(m.output);
  }
  return [...seen.values()];
}

describe("compileJsonEncoder: the same JSON as protobuf-es's toJsonString", () => {
  it("on random messages of every public response type", () => {
    const r = rng(17);
    let compared = 0;
    for (const desc of publicResponseTypes()) {
      const encode = compileJsonEncoder(desc);
      if (encode === undefined) continue;
      for (let i = 0; i < 60; i++) {
        const message = randomMessage(desc, r);
        expect(encode(message), desc.typeName).toBe(generic(desc, message));
        compared++;
      }
    }
    // The hot ones are compiled, not skipped.
    expect(compileJsonEncoder(GetHomeTimelineResponseSchema)).toBeDefined();
    expect(compared).toBeGreaterThan(1000);
  });

  it("a hydrated tweet: unicode, 64-bit ids as strings, defaults written, unset messages left out, an enum by name", () => {
    const tweet = create(TweetSchema, {
      id: 18446744073709551615n,
      authorId: 7n,
      author: create(UserSchema, { id: 7n, handle: "zoë", displayName: "Zoë 🐦", bio: 'says "hi"\n', createTime: { seconds: 1_764_979_200n, nanos: 5_000_000 } }),
      text: "héllo @bob #tag \u2028 https://x.example/?a=1&b=<2>",
      createTime: { seconds: 1_764_979_201n, nanos: 0 },
      media: [create(MediaSchema, { id: 3n, kind: MediaKind.IMAGE, duration: { seconds: 2n, nanos: 500_000_000 } })],
      mediaIds: [3n],
      quoteTweet: create(TweetSchema, { id: 2n, text: "quoted" }),
    });
    const page = create(GetHomeTimelineResponseSchema, { tweets: [tweet, create(TweetSchema, {})], nextPageToken: "" });
    const json = compileJsonEncoder(GetHomeTimelineResponseSchema)!(page);
    expect(json).toBe(generic(GetHomeTimelineResponseSchema, page));
    const parsed = JSON.parse(json) as { tweets: Array<Record<string, unknown>>; nextPageToken: string };
    expect(parsed.tweets[0]!.id).toBe("18446744073709551615");
    expect(parsed.tweets[1]).toMatchObject({ id: "0", text: "", likeCount: 0, hashtags: [] });
    expect(parsed.tweets[1]).not.toHaveProperty("author");
    expect(parsed.nextPageToken).toBe("");
  });

  it("writes a timestamp object's text again once its fields change (each object's text is kept)", () => {
    const encode = compileJsonEncoder(TweetSchema)!;
    const tweet = create(TweetSchema, { id: 1n, createTime: { seconds: 1_764_979_200n, nanos: 0 } });
    expect(encode(tweet)).toBe(generic(TweetSchema, tweet));
    expect(encode(tweet)).toBe(generic(TweetSchema, tweet));
    tweet.createTime!.seconds += 61n;
    expect(encode(tweet)).toBe(generic(TweetSchema, tweet));
    tweet.createTime!.nanos = 250_000_000;
    expect(encode(tweet)).toContain('"createTime":"2025-12-06T00:01:01.250Z"');
    expect(encode(tweet)).toBe(generic(TweetSchema, tweet));
    // Out of range after being written once: refused, as protobuf-es refuses it.
    tweet.createTime!.seconds = 253_402_300_800n;
    expect(() => encode(tweet)).toThrow();
  });

  it("throws where protobuf-es refuses (the adapter then asks protobuf-es, which answers as before)", () => {
    const encode = compileJsonEncoder(TweetSchema)!;
    const badTime = create(TweetSchema, { createTime: { seconds: 253_402_300_800n, nanos: 0 } });
    expect(() => generic(TweetSchema, badTime)).toThrow();
    expect(() => encode(badTime)).toThrow();
    expect(() => encode(create(UserSchema, {}))).toThrow(/not a chirp.tweet.v1.Tweet/);
  });

  it("compiles no encoder for a type with a oneof", () => {
    expect(compileJsonEncoder(GetUserRequestSchema)).toBeUndefined();
  });
});
