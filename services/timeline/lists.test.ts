import { describe, expect, it } from "vitest";
import { entryMember, padId } from "./entries.js";
import { parsePage } from "./lists.js";

const m = (id: bigint, author = 7n): string => entryMember({ id, authorId: author });

describe("a list page as the read script returns it", () => {
  it("tells a missing list and one being built from a built one", () => {
    expect(parsePage([], undefined, 10)).toEqual({ state: "missing" });
    expect(parsePage(["b", ""], undefined, 10)).toEqual({ state: "building" });
    expect(parsePage([`f${padId(0n)}`, ""], undefined, 10)).toEqual({ state: "built", entries: [], floor: 0n });
  });

  it("is complete down to the higher of the sentinel's floor and the list's lowest entry", () => {
    const lowest = m(100n);
    expect(parsePage([`f${padId(0n)}`, lowest, m(300n), m(200n), lowest], undefined, 10)).toMatchObject({ floor: 100n });
    expect(parsePage([`f${padId(150n)}`, lowest, m(300n), m(200n)], undefined, 10)).toMatchObject({ floor: 150n });
  });

  it("a full page stops at its last entry; entries at or above the bound are dropped", () => {
    const page = parsePage([`f${padId(0n)}`, m(10n), m(300n), m(250n), m(200n)], 260n, 3);
    expect(page).toEqual({ state: "built", entries: [{ id: 250n, authorId: 7n }, { id: 200n, authorId: 7n }], floor: 200n });
  });
});
