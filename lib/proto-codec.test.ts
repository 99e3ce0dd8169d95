// The compiled codec against protobuf-es itself: for every message type Chirp
// generates, random messages must encode to toBinary's exact bytes and decode
// to what fromBinary returns; then the edges (negative and 64-bit integers,
// -0 and NaN, non-ASCII and long strings, lengths past one varint byte,
// unknown fields, merged and unpacked fields, bad input).
import { create, fromBinary, toBinary, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TweetSchema } from "../gen/chirp/tweet/v1/tweet_pb.js";
import { BatchGetTweetsResponseSchema } from "../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserSchema } from "../gen/chirp/user/v1/user_pb.js";
import { codecFor, decodeMessage, encodeMessage } from "./proto-codec.js";
import { randomMessage, rng } from "./testing/random-messages.js";

const GEN = join(import.meta.dirname, "..", "gen");

async function generatedMessages(): Promise<DescMessage[]> {
  const files = readdirSync(GEN, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith("_pb.ts"));
  const out: DescMessage[] = [];
  const add = (m: DescMessage): void => {
    out.push(m);
    m.nestedMessages.forEach(add);
  };
  for (const f of files) {
    const mod = (await import(join(GEN, f))) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) if (name.startsWith("file_")) (value as DescFile).messages.forEach(add);
  }
  return out;
}

describe("proto-codec", async () => {
  const messages = await generatedMessages();

  it("finds Chirp's generated messages", () => {
    expect(messages.length).toBeGreaterThan(100);
    expect(messages.map((m) => m.typeName)).toContain("chirp.tweet.v1.Tweet");
  });

  it("writes toBinary's bytes and reads fromBinary's messages, for every generated type", () => {
    const rnd = rng(17);
    for (const schema of messages) {
      for (let i = 0; i < 25; i++) {
        const message = randomMessage(schema, rnd);
        const expected = toBinary(schema, message);
        const bytes = encodeMessage(schema, message);
        expect(Buffer.from(bytes).equals(Buffer.from(expected)), `${schema.typeName} #${i}`).toBe(true);
        expect(decodeMessage(schema, expected), `${schema.typeName} #${i}`).toStrictEqual(fromBinary(schema, expected));
      }
      // The zero message: no bytes, and every field at its zero value as create() makes it.
      expect(encodeMessage(schema, create(schema)).byteLength).toBe(0);
      expect(decodeMessage(schema, new Uint8Array(0))).toStrictEqual(create(schema));
    }
  });

  it("writes a length past one varint byte where it belongs (nested messages over 127 bytes)", () => {
    const author = create(UserSchema, { id: 1n, handle: "h", bio: "b".repeat(300) });
    const tweets = Array.from({ length: 3 }, (_, i) => create(TweetSchema, { id: BigInt(i + 1), author, text: "t".repeat(100 * i), quoteTweet: create(TweetSchema, { id: 9n, author }) }));
    const message = create(BatchGetTweetsResponseSchema, { tweets });
    const bytes = encodeMessage(BatchGetTweetsResponseSchema, message);
    expect(Buffer.from(bytes).equals(Buffer.from(toBinary(BatchGetTweetsResponseSchema, message)))).toBe(true);
    expect(decodeMessage(BatchGetTweetsResponseSchema, bytes)).toStrictEqual(message);
  });

  it("writes lone surrogates as U+FFFD, as TextEncoder does", () => {
    const message = create(UserSchema, { handle: "a\ud800b", displayName: `${"long ".repeat(40)}\udc00` });
    expect(Buffer.from(encodeMessage(UserSchema, message)).equals(Buffer.from(toBinary(UserSchema, message)))).toBe(true);
  });

  it("keeps unknown fields and writes them back, as protobuf-es does", () => {
    const known = toBinary(UserSchema, create(UserSchema, { id: 5n, handle: "x" }));
    // Field 99 (a varint) and field 100 (bytes): from a newer version of the type.
    const bytes = Buffer.concat([known, Buffer.from([0x98, 0x06, 0x2a, 0xa2, 0x06, 0x02, 0x68, 0x69])]);
    const decoded = decodeMessage(UserSchema, bytes);
    expect(decoded).toStrictEqual(fromBinary(UserSchema, bytes));
    expect(decoded.$unknown).toHaveLength(2);
    expect(Buffer.from(encodeMessage(UserSchema, decoded)).equals(bytes)).toBe(true);
  });

  it("merges a repeated singular message field and reads unpacked repeated scalars", () => {
    const a = toBinary(TweetSchema, create(TweetSchema, { author: create(UserSchema, { id: 1n, handle: "a" }), mentions: [1n, 2n] }));
    const b = toBinary(TweetSchema, create(TweetSchema, { author: create(UserSchema, { bio: "b" }) }));
    // mentions (field 12) unpacked: two varint entries.
    const unpacked = Buffer.from([0x60, 0x03, 0x60, 0x04]);
    const bytes = Buffer.concat([a, b, unpacked]);
    const decoded = decodeMessage(TweetSchema, bytes);
    expect(decoded).toStrictEqual(fromBinary(TweetSchema, bytes));
    expect(decoded.author).toMatchObject({ id: 1n, handle: "a", bio: "b" });
    expect(decoded.mentions).toEqual([1n, 2n, 3n, 4n]);
  });

  it("refuses what protobuf-es refuses", () => {
    expect(() => encodeMessage(TweetSchema, create(TweetSchema, { likeCount: -1 }))).toThrow(/uint32/);
    expect(() => encodeMessage(TweetSchema, { ...create(TweetSchema), likeCount: 1.5 })).toThrow(/uint32/);
    expect(() => encodeMessage(TweetSchema, { ...create(TweetSchema), id: "nope" as unknown as bigint })).toThrow(/uint64/);
    expect(() => encodeMessage(TweetSchema, create(TweetSchema, { id: 2n ** 64n }))).toThrow(/uint64/);
    expect(() => encodeMessage(TweetSchema, create(TweetSchema, { id: -1n }))).toThrow(/uint64/);
    expect(() => toBinary(TweetSchema, create(TweetSchema, { id: -1n }))).toThrow(/uint64/);
    // Invalid UTF-8 in a string field (proto3 strings are checked).
    expect(() => decodeMessage(UserSchema, Buffer.from([0x12, 0x02, 0xc3, 0x28]))).toThrow();
    expect(() => fromBinary(UserSchema, Buffer.from([0x12, 0x02, 0xc3, 0x28]))).toThrow();
    // Cut short: a length past the end.
    expect(() => decodeMessage(UserSchema, Buffer.from([0x12, 0x05, 0x61]))).toThrow(/premature EOF/);
    expect(() => decodeMessage(UserSchema, Buffer.from([0x08]))).toThrow();
    // Field number 0.
    expect(() => decodeMessage(UserSchema, Buffer.from([0x00, 0x01]))).toThrow(/illegal tag/);
  });

  it("answers protobuf-es's own functions for types it does not compile (proto2)", () => {
    const file = create(FileDescriptorProtoSchema, { name: "x.proto", package: "p" });
    const bytes = codecFor(FileDescriptorProtoSchema).encode(file);
    expect(Buffer.from(bytes).equals(Buffer.from(toBinary(FileDescriptorProtoSchema, file)))).toBe(true);
    expect(codecFor(FileDescriptorProtoSchema).decode(bytes)).toStrictEqual(fromBinary(FileDescriptorProtoSchema, bytes));
    // A well-known proto3 type compiles like any other.
    const ts = create(TimestampSchema, { seconds: 1796691299n, nanos: 5 });
    expect(decodeMessage(TimestampSchema, encodeMessage(TimestampSchema, ts))).toStrictEqual(ts);
  });
});
