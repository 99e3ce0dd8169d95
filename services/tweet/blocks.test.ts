import { Code, type HandlerContext } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { codeOf } from "../../lib/testing/in-memory.js";
import type { RelationCache } from "../../lib/relations.js";
import { refuseIfBlocked } from "./blocks.js";

const hctx = { requestHeader: new Headers(), signal: new AbortController().signal, timeoutMs: () => undefined } as unknown as HandlerContext;

/** User 1 has a block with user 2 (whichever way); asked pairs are recorded. */
function relations(): RelationCache & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    get: () => Promise.reject(new Error("not used")),
    build: () => Promise.reject(new Error("not used")),
    blocked: async (a, b) => {
      asked.push(`${a}:${b}`);
      return (a === 1n && b === 2n) || (a === 2n && b === 1n);
    },
    invalidate: async () => {},
  };
}

describe("refuseIfBlocked", () => {
  it("is PermissionDenied when a block stands between the actor and any author, either way", async () => {
    expect(await codeOf(refuseIfBlocked(relations(), 1n, [2n], hctx))).toBe(Code.PermissionDenied);
    expect(await codeOf(refuseIfBlocked(relations(), 2n, [3n, 1n], hctx))).toBe(Code.PermissionDenied);
  });

  it("passes otherwise, and never asks about the actor's own tweets", async () => {
    const r = relations();
    await refuseIfBlocked(r, 1n, [1n, 3n, 3n], hctx);
    expect(r.asked).toEqual(["1:3"]);
  });
});
