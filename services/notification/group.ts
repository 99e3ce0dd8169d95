// The grouped view (ListNotifications with grouped): likes and reposts of one
// tweet are one entry, "a, b and 3 others liked", shown at the place of the
// group's newest member. The page walks the inbox newest first as the flat
// view does; a like or repost row is shown only if it is its group's newest
// (the group then carries its newest actors and its size), and is skipped
// otherwise: the group was shown above it, on this page or an earlier one.
// So every group appears once across pages, and the cursor is still just the
// last row walked. (A group that gains a member while someone pages moves to
// the top, where the next first page shows it.)
import { groupable, type Cause } from "./causes.js";

/** One inbox row, as the store reads it. */
export interface InboxRow {
  readonly id: bigint;
  readonly cause: Cause;
  readonly subjectId: bigint;
  readonly actorId: bigint;
  readonly kind: number;
  readonly timeMicros: bigint;
}

/** A group as the store summarises it: its newest member, its size and its newest actors. */
export interface GroupSummary {
  readonly newestId: bigint;
  readonly size: number;
  /** Newest first. */
  readonly actorIds: readonly bigint[];
}

export function groupKey(cause: Cause, subjectId: bigint): string {
  return `${cause}:${subjectId}`;
}

export interface PageEntry {
  /** The row the entry shows (a group's newest member). */
  readonly row: InboxRow;
  /** Newest first; [row.actorId] for an ungrouped row. */
  readonly actorIds: readonly bigint[];
  readonly actorCount: number;
}

export interface Page {
  readonly entries: PageEntry[];
  /** The id to continue below, or undefined when the inbox ends here. */
  readonly nextAfter: bigint | undefined;
}

/**
 * Builds a page of at most `pageSize` entries from `rows` (newest first, as
 * read; `more` says whether the inbox goes on below them). With `groups`
 * undefined it is the flat view: one entry per row.
 */
export function buildPage(rows: readonly InboxRow[], more: boolean, pageSize: number, groups?: ReadonlyMap<string, GroupSummary>): Page {
  const entries: PageEntry[] = [];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (groups !== undefined && groupable(row.cause)) {
      const g = groups.get(groupKey(row.cause, row.subjectId));
      // No summary: the group was undone between the two reads; its rows are gone.
      if (g === undefined || g.newestId !== row.id) continue;
      entries.push({ row, actorIds: g.actorIds.length > 0 ? g.actorIds : [row.actorId], actorCount: Math.max(g.size, 1) });
    } else {
      entries.push({ row, actorIds: [row.actorId], actorCount: 1 });
    }
    if (entries.length === pageSize) {
      const last = i === rows.length - 1;
      return { entries, nextAfter: last && !more ? undefined : row.id };
    }
  }
  const lastRow = rows.at(-1);
  return { entries, nextAfter: more && lastRow !== undefined ? lastRow.id : undefined };
}
