import { create, toJsonString, type DescMessage } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetHomeTimelineResponseSchema } from "../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetSchema } from "../gen/chirp/tweet/v1/tweet_pb.js";
import { MediaKind, MediaSchema } from "../gen/chirp/media/v1/media_pb.js";
import { UserSchema } from "../gen/chirp/user/v1/user_pb.js";
import { GetUserRequestSchema } from "../gen/chirp/user/v1/user_service_pb.js";
import { randomMessage, rng } from "../lib/testing/random-messages.js";
import { compileJsonEncoder } from "./fast-json.js";
import { PUBLIC_API } from "./public-api.js";

// The gateway's JSON options (server.ts).
const OPTIONS = { alwaysEmitImplicit: true };
const generic = (desc: DescMessage, message: unknown): string => toJsonString(desc, message as never, OPTIONS);

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
