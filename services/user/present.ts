import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserSchema, type User } from "../../gen/chirp/user/v1/user_pb.js";
import type { UserRow } from "./store.js";

const UINT32_MAX = 0xffff_ffff;

/**
 * A user row as the public profile. The email is shown only to its owner:
 * `withEmail` is the handler's decision (caller == user), never a default.
 */
export function presentUser(row: UserRow, options: { readonly withEmail: boolean }): User {
  return create(UserSchema, {
    id: row.id,
    handle: row.handle,
    displayName: row.displayName,
    bio: row.bio,
    createTime: timestampFromDate(row.createTime),
    followerCount: count(row.followerCount),
    followingCount: count(row.followingCount),
    tweetCount: count(row.tweetCount),
    email: options.withEmail ? row.email : "",
  });
}

// The counters are signed BIGINTs that a racing decrement can push below zero
// for a moment (migration 0001); the API's are uint32.
function count(n: number): number {
  return Number.isFinite(n) ? Math.min(Math.max(Math.trunc(n), 0), UINT32_MAX) : 0;
}
