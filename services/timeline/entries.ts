// A timeline entry is a tweet id and its author, and for a repost the
// original and its author. In Redis it is a sorted-set member
// `<tweet id, 20 decimal digits>:<author id>`, or for a repost
// `<tweet id, 20 digits>:r<original id>-<original's author>:<author id>`,
// scored by the id's millisecond. Tweet ids are 63-bit Snowflakes, above the
// 2^53 a double holds exactly, so the id itself cannot be the score; its
// millisecond can, and members of one score sort by their bytes, which for a
// fixed-width decimal is the id's order. The author rides along (always the
// last field) so an unfollow can take one author's entries out without
// reading any tweet; the original rides along so a read loads a repost and
// its original in one round trip.
import { parseId } from "../../lib/ids.js";

export interface Entry {
  readonly id: bigint;
  readonly authorId: bigint;
  /** A repost's original, when known (entries written before it was carried have none). */
  readonly original?: { readonly id: bigint; readonly authorId: bigint } | undefined;
}

const ID_WIDTH = 20;

export function padId(id: bigint): string {
  return id.toString().padStart(ID_WIDTH, "0");
}

export function entryMember(e: Entry): string {
  return e.original === undefined ? `${padId(e.id)}:${e.authorId}` : `${padId(e.id)}:r${e.original.id}-${e.original.authorId}:${e.authorId}`;
}

/** What every member of the entry with this id starts with, whatever else it carries. */
export function memberPrefix(id: bigint): string {
  return `${padId(id)}:`;
}

/** The score of an entry: the id's millisecond (Unix time), exact in a double. */
export function entryScore(id: bigint): number {
  return parseId(id).timeMs;
}

const DIGITS = /^\d+$/;
const REPOST = /^r(\d+)-(\d+)$/;

/** The entry a member names; undefined for anything else (a sentinel). */
export function parseMember(member: string): Entry | undefined {
  if (member.length < ID_WIDTH + 2 || member[ID_WIDTH] !== ":") return undefined;
  const id = member.slice(0, ID_WIDTH);
  const rest = member.slice(ID_WIDTH + 1);
  if (!DIGITS.test(id)) return undefined;
  const colon = rest.indexOf(":");
  if (colon === -1) return DIGITS.test(rest) ? { id: BigInt(id), authorId: BigInt(rest) } : undefined;
  const repost = REPOST.exec(rest.slice(0, colon));
  const author = rest.slice(colon + 1);
  if (repost === null || !DIGITS.test(author)) return undefined;
  return { id: BigInt(id), authorId: BigInt(author), original: { id: BigInt(repost[1]!), authorId: BigInt(repost[2]!) } };
}

/** Newest first, each id once (the first occurrence wins). */
export function newestFirst(entries: Iterable<Entry>): Entry[] {
  const byId = new Map<bigint, Entry>();
  for (const e of entries) if (!byId.has(e.id)) byId.set(e.id, e);
  return [...byId.values()].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

export function maxId(...ids: bigint[]): bigint {
  return ids.reduce((a, b) => (b > a ? b : a), 0n);
}
