// A users row as its public profile (the User message), in one place for the
// services that read the row: the user service (services/user/present.ts adds
// the email for its owner) and the tweet service, which reads its author's row
// in a post's own transaction to answer with it and cache it
// (services/tweet/writes.ts, lib/user-cache.ts settle).
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserSchema, type User } from "../gen/chirp/user/v1/user_pb.js";
import type { Transaction } from "./shard/router.js";

/** The columns of a users row that make its public profile. */
export const PROFILE_COLUMNS = "id, handle, display_name, bio, create_time, follower_count, following_count, tweet_count";

/** The PROFILE_COLUMNS of a row as mysql2 reads them (ids and counts as strings: BIGINT). */
export interface RawProfile {
  id: string;
  handle: string;
  display_name: string;
  bio: string;
  create_time: Date;
  follower_count: string | number;
  following_count: string | number;
  tweet_count: string | number;
}

export interface ProfileRow {
  readonly id: bigint;
  readonly handle: string;
  readonly displayName: string;
  readonly bio: string;
  readonly createTime: Date;
  /** As stored: signed, and for a moment below zero after racing decrements (profileOf clamps). */
  readonly followerCount: number;
  readonly followingCount: number;
  readonly tweetCount: number;
}

export function parseProfile(r: RawProfile): ProfileRow {
  return {
    id: BigInt(r.id),
    handle: r.handle,
    displayName: r.display_name,
    bio: r.bio,
    createTime: r.create_time,
    followerCount: Number(r.follower_count),
    followingCount: Number(r.following_count),
    tweetCount: Number(r.tweet_count),
  };
}

/**
 * The user's public profile as `tx` leaves it, read in its next round trip
 * (Transaction.deferRead: with its COMMIT when nothing follows): what a post
 * answers with and caches after changing its author's tweet_count. Undefined
 * when there is no such user row. The user service owns the table
 * (lib/db/README.md); this read is the tweet service's one look at it.
 */
export async function deferProfileRead(tx: Transaction, userId: bigint): Promise<ProfileRow | undefined> {
  const [row] = await tx.deferRead<RawProfile>(`SELECT ${PROFILE_COLUMNS} FROM chirp.users WHERE id = ?`, [userId]);
  return row === undefined ? undefined : parseProfile(row);
}

const UINT32_MAX = 0xffff_ffff;

/** The profile of `row`; `email` only for its owner (the caller's decision), empty otherwise. */
export function profileOf(row: ProfileRow, email = ""): User {
  return create(UserSchema, {
    id: row.id,
    handle: row.handle,
    displayName: row.displayName,
    bio: row.bio,
    createTime: timestampFromDate(row.createTime),
    followerCount: count(row.followerCount),
    followingCount: count(row.followingCount),
    tweetCount: count(row.tweetCount),
    email,
  });
}

// The counters are signed BIGINTs that a racing decrement can push below zero
// for a moment (migration 0001); the API's are uint32.
function count(n: number): number {
  return Number.isFinite(n) ? Math.min(Math.max(Math.trunc(n), 0), UINT32_MAX) : 0;
}
