import type { Redis } from "ioredis";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createRelationCache, hides, parseRelations, relationMembers } from "./relations.js";
import type { MeshClients } from "./rpc/mesh-clients.js";

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

describe("createRelationCache", () => {
  it("asks the graph when Redis fails, and still answers right", async () => {
    const down = async (): Promise<never> => {
      throw new Error("redis down");
    };
    const redis = { defineCommand() {}, smembers: down, smismember: down, set: down } as unknown as Redis;
    const clients = { graph: { listRelationIds: async () => ({ blockedIds: [2n], blockedByIds: [3n], mutedIds: [4n] }) } } as unknown as Pick<MeshClients, "graph">;
    const cache = createRelationCache({ redis, clients, ttlMs: 1000, log: pino({ level: "silent" }) });
    expect(await cache.get(1n)).toEqual({ blocks: new Set([2n, 3n]), mutes: new Set([4n]) });
    expect(await cache.build(1n)).toEqual({ blocks: new Set([2n, 3n]), mutes: new Set([4n]) });
    expect([await cache.blocked(1n, 3n), await cache.blocked(1n, 4n)]).toEqual([true, false]);
  });
});
