// The media events: written to the outbox in the transaction of the change
// they announce, on the owner's shard (the row's user_id is the owner's).
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { appendOutbox, type Announce } from "../../lib/events/outbox.js";
import { EVENTS } from "../../lib/events/subjects.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { MediaRow } from "./store.js";

/** MediaUploaded, from the row as written (its create_time is the database's). */
export function announceMediaUploaded(ids: IdGenerator, requestId: string | undefined): Announce<MediaRow> {
  return (tx, row) =>
    appendOutbox(tx, ids, {
      type: EVENTS.mediaUploaded,
      userId: row.ownerId,
      requestId,
      message: create(EVENTS.mediaUploaded.schema, {
        mediaId: row.id,
        ownerId: row.ownerId,
        kind: row.kind,
        contentType: row.contentType,
        sizeBytes: BigInt(row.sizeBytes),
        createTime: timestampFromDate(row.createTime),
      }),
    });
}
