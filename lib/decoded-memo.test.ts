import { describe, expect, it } from "vitest";
import { DecodedMemo } from "./decoded-memo.js";

const decoder = () => {
  const calls: string[] = [];
  const decode = (b: Buffer): { text: string } | undefined => {
    calls.push(b.toString());
    return b.toString() === "bad" ? undefined : { text: b.toString() };
  };
  return { calls, decode };
};

describe("DecodedMemo", () => {
  it("decodes equal bytes of an id once, and hands out that value", () => {
    const memo = new DecodedMemo<{ text: string }>(10);
    const { calls, decode } = decoder();
    const first = memo.decode(1n, Buffer.from("v1:a"), decode);
    const again = memo.decode(1n, Buffer.from("v1:a"), decode);
    expect(again).toBe(first);
    expect(calls).toEqual(["v1:a"]);
  });

  it("decodes afresh when the bytes changed (a new version, new counts, a tombstone), and keeps the new value", () => {
    const memo = new DecodedMemo<{ text: string }>(10);
    const { calls, decode } = decoder();
    memo.decode(1n, Buffer.from("v1:a"), decode);
    expect(memo.decode(1n, Buffer.from("v2:a"), decode)).toEqual({ text: "v2:a" });
    expect(memo.decode(1n, Buffer.from("v2:a"), decode)).toEqual({ text: "v2:a" });
    // Same length, one byte different.
    expect(memo.decode(1n, Buffer.from("v2:b"), decode)).toEqual({ text: "v2:b" });
    expect(calls).toEqual(["v1:a", "v2:a", "v2:b"]);
  });

  it("keeps its own copy of the bytes (a reply buffer reused later changes nothing)", () => {
    const memo = new DecodedMemo<{ text: string }>(10);
    const { calls, decode } = decoder();
    const reply = Buffer.from("v1:a");
    memo.decode(1n, reply, decode);
    reply.write("v9:z");
    expect(memo.decode(1n, Buffer.from("v9:z"), decode)).toEqual({ text: "v9:z" });
    expect(calls).toEqual(["v1:a", "v9:z"]);
  });

  it("keeps no refused value, and ids are apart", () => {
    const memo = new DecodedMemo<{ text: string }>(10);
    const { calls, decode } = decoder();
    expect(memo.decode(1n, Buffer.from("bad"), decode)).toBeUndefined();
    expect(memo.decode(1n, Buffer.from("bad"), decode)).toBeUndefined();
    memo.decode(2n, Buffer.from("x"), decode);
    memo.decode(3n, Buffer.from("x"), decode);
    expect(calls).toEqual(["bad", "bad", "x", "x"]);
    expect(memo.held).toBe(2);
  });

  it("holds at most its size, forgetting the least recently used id", () => {
    const memo = new DecodedMemo<{ text: string }>(2);
    const { calls, decode } = decoder();
    memo.decode(1n, Buffer.from("a"), decode);
    memo.decode(2n, Buffer.from("b"), decode);
    memo.decode(1n, Buffer.from("a"), decode); // 1 used last
    memo.decode(3n, Buffer.from("c"), decode); // 2 goes
    memo.decode(1n, Buffer.from("a"), decode);
    memo.decode(2n, Buffer.from("b"), decode);
    expect(calls).toEqual(["a", "b", "c", "b"]);
    expect(memo.held).toBe(2);
    const none = new DecodedMemo<{ text: string }>(0);
    none.decode(1n, Buffer.from("a"), decode);
    expect(none.held).toBe(0);
  });
});
