import type { User } from "../../gen/chirp/user/v1/user_pb.js";
import { profileOf } from "../../lib/user-profile.js";
import type { UserRow } from "./store.js";

/**
 * A user row as the public profile (lib/user-profile.ts). The email is shown
 * only to its owner: `withEmail` is the handler's decision (caller == user),
 * never a default.
 */
export function presentUser(row: UserRow, options: { readonly withEmail: boolean }): User {
  return profileOf(row, options.withEmail ? row.email : "");
}
