// The graph events: written to the outbox with the change (UserFollowed,
// UserUnfollowed, carrying the edge version), and read back by the repair
// consumer, which applies them to the followee's side.
import { create } from "@bufbuild/protobuf";
import type { UserBlocked, UserFollowed, UserUnblocked, UserUnfollowed } from "../../gen/chirp/graph/v1/events_pb.js";
import type { IdGenerator } from "../../lib/ids.js";
import { appendOutbox, type Announce } from "../../lib/events/outbox.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { microsFromTimestamp, timestampFromMicros } from "./edge-time.js";
import type { AnnouncedBlock, BlockVersion } from "./relations-store.js";
import type { EdgeChange, EdgeVersion } from "./store.js";
import { decodeMessage } from "../../lib/proto-codec.js";

/** The outbox writer for one request: UserFollowed or UserUnfollowed, on the follower's shard. */
export function announceEdgeChange(ids: IdGenerator, requestId: string | undefined): Announce<EdgeChange> {
  return (tx, { edge, changeTimeMicros }) => {
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

/** A graph edge event, decoded (what the event consumer hands over). */
export type GraphEdgeEvent =
  | { readonly subject: typeof EVENTS.userFollowed.subject; readonly message: UserFollowed }
  | { readonly subject: typeof EVENTS.userUnfollowed.subject; readonly message: UserUnfollowed };

/** The events the repair consumer reads. */
export const GRAPH_EDGE_EVENTS = [EVENTS.userFollowed, EVENTS.userUnfollowed] as const;

/** Decodes an outbox row or a raw message of one of GRAPH_EDGE_EVENTS; undefined for another subject. Throws on a bad payload. */
export function decodeGraphEdgeEvent(subject: string, payload: Uint8Array): GraphEdgeEvent | undefined {
  if (subject === EVENTS.userFollowed.subject) return { subject, message: decodeMessage(EVENTS.userFollowed.schema, payload) };
  if (subject === EVENTS.userUnfollowed.subject) return { subject, message: decodeMessage(EVENTS.userUnfollowed.schema, payload) };
  return undefined;
}

/**
 * The edge version an event announces, or undefined for an event without one
 * (written before versions existed: nothing to apply; the sweep covers it).
 */
export function edgeVersionOfEvent(event: GraphEdgeEvent): EdgeVersion | undefined {
  const { followerId, followeeId, edgeVersion } = event.message;
  if (edgeVersion === 0n) return undefined;
  if (event.subject === EVENTS.userFollowed.subject) {
    return { followerId, followeeId, active: true, version: edgeVersion, followTimeMicros: microsFromTimestamp(event.message.followTime) };
  }
  // The unfollow does not say when the follow it ends began. The followee's
  // side keeps its own follow time on an unfollow and uses this one only for
  // a row it has never seen (never listed: it is removed).
  return { followerId, followeeId, active: false, version: edgeVersion, followTimeMicros: microsFromTimestamp(event.message.unfollowTime) };
}

/** The outbox writer for one request: UserBlocked or UserUnblocked, on the blocker's shard. */
export function announceBlockChange(ids: IdGenerator, requestId: string | undefined): Announce<AnnouncedBlock> {
  return (tx, { block, changeTimeMicros }) => {
    const common = { blockerId: block.blockerId, blockedId: block.blockedId, blockVersion: block.version };
    const time = timestampFromMicros(changeTimeMicros);
    return block.active
      ? appendOutbox(tx, ids, { type: EVENTS.userBlocked, message: create(EVENTS.userBlocked.schema, { ...common, blockTime: time }), userId: block.blockerId, requestId })
      : appendOutbox(tx, ids, {
          type: EVENTS.userUnblocked,
          message: create(EVENTS.userUnblocked.schema, { ...common, unblockTime: time }),
          userId: block.blockerId,
          requestId,
        });
  };
}

/** A block event, decoded. */
export type BlockEvent =
  | { readonly subject: typeof EVENTS.userBlocked.subject; readonly message: UserBlocked }
  | { readonly subject: typeof EVENTS.userUnblocked.subject; readonly message: UserUnblocked };

/** The block events the graph's own consumer reads (with GRAPH_EDGE_EVENTS: one durable, filter chirp.graph.v1.*). */
export const BLOCK_EVENTS = [EVENTS.userBlocked, EVENTS.userUnblocked] as const;

/** The block version an event announces; undefined without one. */
export function blockVersionOfEvent(event: BlockEvent): BlockVersion | undefined {
  const { blockerId, blockedId, blockVersion } = event.message;
  if (blockVersion === 0n) return undefined;
  return { blockerId, blockedId, active: event.subject === EVENTS.userBlocked.subject, version: blockVersion };
}
