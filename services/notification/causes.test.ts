import { describe, expect, it } from "vitest";
import { NotificationKind } from "../../gen/chirp/notification/v1/notification_pb.js";
import { ABSENT, Cause, decide, followChange, likeChange, mentionRecipients, repostChange, tweetChange, tweetRemoval, type StoredCause } from "./causes.js";

const K = NotificationKind;

/** Applies changes in order to one row, as store.apply does; returns the final row and how many times it was shown. */
function run(changes: Array<{ active: boolean; version: bigint; kind?: NotificationKind }>): { row: StoredCause; shown: number } {
  let row = ABSENT;
  let shown = 0;
  for (const c of changes) {
    const change = { kind: K.LIKE, ...c };
    const d = decide(row, change);
    if (d === "show") shown++;
    if (d === "show" || d === "hide" || d === "version") row = { active: d === "show" ? true : d === "hide" ? false : row.active, version: change.version, kind: row.kind === K.UNSPECIFIED ? change.kind : row.kind };
    if (d === "kind") row = { ...row, kind: change.kind };
  }
  return { row, shown };
}

describe("decide: one cause's row under redelivery and reordering", () => {
  it("shows a new cause once, however often its event is delivered", () => {
    expect(decide(ABSENT, { active: true, version: 1n, kind: K.LIKE })).toBe("show");
    expect(run([{ active: true, version: 1n }, { active: true, version: 1n }, { active: true, version: 1n }])).toEqual({ row: { active: true, version: 1n, kind: K.LIKE }, shown: 1 });
  });

  it("hides an undone cause, and an older event arriving late cannot bring it back", () => {
    expect(run([{ active: true, version: 1n }, { active: false, version: 2n }, { active: true, version: 1n }]).row.active).toBe(false);
    // The undo first (reordered): recorded as a tombstone, the like never shows.
    expect(run([{ active: false, version: 2n }, { active: true, version: 1n }])).toEqual({ row: { active: false, version: 2n, kind: K.LIKE }, shown: 0 });
  });

  it("shows again for a newer cause (a like after an unlike), once", () => {
    expect(run([{ active: true, version: 1n }, { active: false, version: 2n }, { active: true, version: 3n }, { active: true, version: 3n }])).toMatchObject({ shown: 2, row: { active: true } });
  });

  it("lets an undo win at an equal version (a repost and its unrepost share the repost id)", () => {
    expect(decide({ active: true, version: 7n, kind: K.REPOST }, { active: false, version: 7n, kind: K.REPOST })).toBe("hide");
    expect(decide({ active: false, version: 7n, kind: K.REPOST }, { active: true, version: 7n, kind: K.REPOST })).toBe("none");
  });

  it("keeps one notification per tweet and recipient, upgraded to the strongest kind without notifying again", () => {
    const row: StoredCause = { active: true, version: 1n, kind: K.MENTION };
    expect(decide(row, { active: true, version: 1n, kind: K.REPLY })).toBe("kind");
    expect(decide({ ...row, kind: K.REPLY }, { active: true, version: 1n, kind: K.MENTION })).toBe("none");
    expect(decide({ ...row, kind: K.QUOTE }, { active: true, version: 1n, kind: K.REPLY })).toBe("kind");
  });

  it("a deleted tweet's removal hides its notification, and a late creation does not show it", () => {
    const removal = tweetRemoval(10n, 2n, 3n);
    expect(run([{ active: true, version: 1n }, removal]).row.active).toBe(false);
    expect(run([removal, { active: true, version: 1n, kind: K.REPLY }]).shown).toBe(0);
  });
});

describe("events to changes", () => {
  it("never notifies anyone of their own action", () => {
    expect(followChange({ followerId: 1n, followeeId: 1n, edgeVersion: 1n }, true, 0n)).toBeUndefined();
    expect(likeChange({ tweetId: 5n, authorId: 1n, likerId: 1n, likeVersion: 1n }, true, 0n)).toBeUndefined();
    expect(repostChange({ tweetId: 5n, authorId: 1n, reposterId: 1n, repostId: 9n }, true, 0n)).toBeUndefined();
    expect(tweetChange(5n, 1n, 1n, K.REPLY, 0n)).toBeUndefined();
    expect(mentionRecipients(1n, [1n, 2n, 2n, 3n, 0n])).toEqual([2n, 3n]);
  });

  it("keys each cause: follows by follower, likes and reposts by tweet and actor, tweets by the new tweet", () => {
    expect(followChange({ followerId: 1n, followeeId: 2n, edgeVersion: 3n }, true, 0n)).toMatchObject({ recipientId: 2n, cause: Cause.follow, subjectId: 0n, actorId: 1n, version: 3n, kind: K.FOLLOW });
    expect(likeChange({ tweetId: 5n, authorId: 2n, likerId: 1n, likeVersion: 0n }, false, 0n)).toMatchObject({ recipientId: 2n, cause: Cause.like, subjectId: 5n, actorId: 1n, version: 1n, active: false });
    expect(repostChange({ tweetId: 5n, authorId: 2n, reposterId: 1n, repostId: 99n }, true, 0n)).toMatchObject({ cause: Cause.repost, subjectId: 5n, version: 99n });
    expect(tweetChange(8n, 1n, 2n, K.QUOTE, 0n)).toMatchObject({ recipientId: 2n, cause: Cause.tweet, subjectId: 8n, actorId: 1n, version: 1n, kind: K.QUOTE });
  });
});
