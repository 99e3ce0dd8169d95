// The user events: written to the outbox in the transaction of the change
// they announce, on the user's shard (the row's user_id is the user's).
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { appendOutbox, type Announce } from "../../lib/events/outbox.js";
import { EVENTS } from "../../lib/events/subjects.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { UserRow } from "./store.js";

/** UserCreated, from the row as written (its create_time is the database's). */
export function announceUserCreated(ids: IdGenerator, requestId: string | undefined): Announce<UserRow> {
  return (tx, row) =>
    appendOutbox(tx, ids, {
      type: EVENTS.userCreated,
      message: create(EVENTS.userCreated.schema, {
        userId: row.id,
        handle: row.handle,
        displayName: row.displayName,
        createTime: timestampFromDate(row.createTime),
      }),
      userId: row.id,
      requestId,
    });
}

/** ProfileUpdated, from the row as changed; stamped with this process's clock. */
export function announceProfileUpdated(ids: IdGenerator, requestId: string | undefined): Announce<UserRow> {
  return (tx, row) =>
    appendOutbox(tx, ids, {
      type: EVENTS.profileUpdated,
      message: create(EVENTS.profileUpdated.schema, {
        userId: row.id,
        displayName: row.displayName,
        bio: row.bio,
        updateTime: timestampFromDate(new Date()),
      }),
      userId: row.id,
      requestId,
    });
}

/** UserDeleted, written with the deletion of the user row; stamped with this process's clock. */
export function announceUserDeleted(ids: IdGenerator, requestId: string | undefined): Announce<UserRow> {
  return (tx, row) =>
    appendOutbox(tx, ids, {
      type: EVENTS.userDeleted,
      message: create(EVENTS.userDeleted.schema, { userId: row.id, deleteTime: timestampFromDate(new Date()) }),
      userId: row.id,
      requestId,
    });
}
