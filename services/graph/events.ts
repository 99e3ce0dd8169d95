// The graph events: written to the outbox with the change (UserFollowed,
// UserUnfollowed, carrying the edge version), and read back by the repair
// consumer, which applies them to the followee's side.
import { create, fromBinary } from "@bufbuild/protobuf";
import type { IdGenerator } from "../lib/ids.js";
import { appendOutbox } from "../lib/events/outbox.js";
import { EVENTS } from "../lib/events/subjects.js";
import { microsFromTimestamp, timestampFromMicros } from "./edge-time.js";
import type { Announce, EdgeVersion } from "./store.js";

/** The outbox writer for one request: UserFollowed or UserUnfollowed, on the follower's shard. */
export function announceEdgeChange(ids: IdGenerator, requestId: string | undefined): Announce {
  return (tx, edge, changeTimeMicros) => {
    const common = { followerId: edge.followerId, followeeId: edge.followeeId, edgeVersion: edge.version };
    return edge.active
      ? appendOutbox(tx, ids, {
          type: EVENTS.userFollowed,
          message: create(EVENTS.userFollowed.schema, { ...common, followTime: timestampFromMicros(edge.followTimeMicros) }),
          userId: edge.followerId,
          requestId,
        })
      : appendOutbox(tx, ids, {
          type: EVENTS.userUnfollowed,
          message: create(EVENTS.userUnfollowed.schema, { ...common, unfollowTime: timestampFromMicros(changeTimeMicros) }),
          userId: edge.followerId,
          requestId,
        });
  };
}

/** Subjects the repair consumer reads. */
export const GRAPH_EDGE_SUBJECTS = [EVENTS.userFollowed.subject, EVENTS.userUnfollowed.subject] as const;

/**
 * The edge version an event announces, or undefined for a subject that is not
 * a graph edge event or an event without a version (one written before
 * versions existed: nothing to apply, the sweep covers it).
 * Throws on a payload that does not decode.
 */
export function edgeVersionOfEvent(subject: string, payload: Uint8Array): EdgeVersion | undefined {
  if (subject === EVENTS.userFollowed.subject) {
    const e = fromBinary(EVENTS.userFollowed.schema, payload);
    if (e.edgeVersion === 0n) return undefined;
    return { followerId: e.followerId, followeeId: e.followeeId, active: true, version: e.edgeVersion, followTimeMicros: microsFromTimestamp(e.followTime) };
  }
  if (subject === EVENTS.userUnfollowed.subject) {
    const e = fromBinary(EVENTS.userUnfollowed.schema, payload);
    if (e.edgeVersion === 0n) return undefined;
    // The unfollow does not say when the follow it ends began; a removed row's
    // follow time is never listed, so the unfollow time stands in.
    return { followerId: e.followerId, followeeId: e.followeeId, active: false, version: e.edgeVersion, followTimeMicros: microsFromTimestamp(e.unfollowTime) };
  }
  return undefined;
}
