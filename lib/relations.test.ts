import { describe, expect, it } from "vitest";
import { hides, parseRelations, relationMembers } from "./relations.js";

describe("a user's cached blocks and mutes", () => {
  it("round-trips through the set's members; a set without '*' is not built", () => {
    const members = relationMembers([2n, 3n], [4n]);
    expect(members[0]).toBe("*");
    expect(parseRelations([...members].reverse())).toEqual({ blocks: new Set([2n, 3n]), mutes: new Set([4n]) });
    expect(parseRelations(["*"])).toEqual({ blocks: new Set(), mutes: new Set() });
    expect(parseRelations(["b2", "m4"])).toBeUndefined();
    expect(parseRelations([])).toBeUndefined();
  });

  it("ignores members it does not know", () => {
    expect(parseRelations(["*", "x9", "b", "b12", "m-1"])).toEqual({ blocks: new Set([12n]), mutes: new Set() });
  });

  it("hides blocked and muted users alike", () => {
    const r = { blocks: new Set([2n]), mutes: new Set([4n]) };
    expect([2n, 3n, 4n].map((id) => hides(r, id))).toEqual([true, false, true]);
  });
});
