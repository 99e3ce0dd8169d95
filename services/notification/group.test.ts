import { describe, expect, it } from "vitest";
import { Cause } from "./causes.js";
import { buildPage, groupKey, type GroupSummary, type InboxRow } from "./group.js";

const row = (id: number, cause: Cause, subjectId: number, actorId: number): InboxRow => ({
  id: BigInt(id),
  cause,
  subjectId: BigInt(subjectId),
  actorId: BigInt(actorId),
  kind: cause,
  timeMicros: 0n,
});

/** Group summaries as the store computes them from every shown row of the inbox. */
function summaries(all: readonly InboxRow[]): Map<string, GroupSummary> {
  const out = new Map<string, GroupSummary>();
  for (const r of [...all].sort((a, b) => (b.id > a.id ? 1 : -1))) {
    if (r.cause !== Cause.like && r.cause !== Cause.repost) continue;
    const key = groupKey(r.cause, r.subjectId);
    const g = out.get(key);
    if (g === undefined) out.set(key, { newestId: r.id, size: 1, actorIds: [r.actorId] });
    else out.set(key, { ...g, size: g.size + 1, actorIds: g.actorIds.length < 3 ? [...g.actorIds, r.actorId] : g.actorIds });
  }
  return out;
}

// Newest first: likes of tweet 100 by 5 people spread through the inbox, a follow, a reply, a repost of 100, a like of 200.
const inbox: InboxRow[] = [
  row(20, Cause.like, 100, 5),
  row(19, Cause.follow, 0, 9),
  row(18, Cause.like, 100, 4),
  row(17, Cause.repost, 100, 8),
  row(16, Cause.like, 200, 4),
  row(15, Cause.tweet, 300, 7),
  row(14, Cause.like, 100, 3),
  row(13, Cause.like, 100, 2),
  row(12, Cause.like, 100, 1),
  row(11, Cause.follow, 0, 6),
];

/** Pages through `inbox` as ListNotifications does, reading `scan` rows a page. */
function walk(pageSize: number, scan: number, grouped: boolean): Array<Array<[number, number[], number]>> {
  const groups = grouped ? summaries(inbox) : undefined;
  const pages: Array<Array<[number, number[], number]>> = [];
  let before: bigint | undefined;
  for (let guard = 0; guard < 20; guard++) {
    const below = inbox.filter((r) => before === undefined || r.id < before);
    const page = buildPage(below.slice(0, scan), below.length > scan, pageSize, groups);
    pages.push(page.entries.map((e) => [Number(e.row.id), e.actorIds.map(Number), e.actorCount]));
    if (page.nextAfter === undefined) return pages;
    before = page.nextAfter;
  }
  throw new Error("no end");
}

describe("grouped view", () => {
  it("shows each like group once, at its newest member, with its newest actors and its size", () => {
    expect(walk(100, 100, true)).toEqual([
      [
        [20, [5, 4, 3], 5],
        [19, [9], 1],
        [17, [8], 1],
        [16, [4], 1],
        [15, [7], 1],
        [11, [6], 1],
      ],
    ]);
  });

  it("pages without repeating or losing an entry, whatever the page size and scan", () => {
    const all = walk(100, 100, true).flat();
    for (const [pageSize, scan] of [[1, 1], [1, 3], [2, 2], [2, 5], [3, 4], [5, 5]] as const) {
      const pages = walk(pageSize, scan, true);
      expect(pages.flat(), `${pageSize}/${scan}`).toEqual(all);
      for (const p of pages) expect(p.length).toBeLessThanOrEqual(pageSize);
    }
  });

  it("the flat view is every row, in pages of exactly pageSize until the last", () => {
    const pages = walk(3, 3, false);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 1]);
    expect(pages.flat().map((e) => e[0])).toEqual(inbox.map((r) => Number(r.id)));
  });

  it("ends with no cursor when the last page is exactly full", () => {
    const page = buildPage(inbox.slice(0, 4), false, 4);
    expect(page.entries).toHaveLength(4);
    expect(page.nextAfter).toBeUndefined();
    expect(buildPage(inbox.slice(0, 4), true, 4).nextAfter).toBe(17n);
  });
});
