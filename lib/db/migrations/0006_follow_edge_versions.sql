-- Follow edges get a state and a version, so the two copies of an edge (follows
-- on the follower's shard, followers on the followee's shard) can be brought
-- in line in any order (docs/architecture.md, "Social graph"):
--   state        1 active, 0 removed. An unfollow keeps the row (state 0), so
--                the edge's version survives it and a later, delayed copy of
--                an older change can still be recognised as older.
--   version      +1 for every follow or unfollow that changes the state; set
--                on the follower's side under its row lock, copied to the
--                followee's side, which only ever moves to a higher version.
--   follow_time  when the current follow began (create_time stays the first
--                follow): the list order, and the same on both sides.
-- follows (the follower's side, the source of truth) also gets:
--   sync_pending 1 from the change until the followee's side is known to have
--                its version; the repair sweep looks for these rows.
--   update_time  when the state last changed (how long a row has been pending).
-- Nothing wrote to either table before this migration. Portable across MariaDB
-- 10.11+ and MySQL 8.0+.

ALTER TABLE follows
  ADD COLUMN state TINYINT UNSIGNED NOT NULL DEFAULT 1 AFTER followee_id,
  ADD COLUMN version BIGINT UNSIGNED NOT NULL DEFAULT 1 AFTER state,
  ADD COLUMN follow_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) AFTER version,
  ADD COLUMN update_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  ADD COLUMN sync_pending TINYINT UNSIGNED NOT NULL DEFAULT 0,
  -- ListFollowing: newest follow first, keyset (follow_time, followee_id).
  ADD KEY follows_by_time (follower_id, state, follow_time, followee_id),
  -- The repair sweep: the few rows whose followee side is not confirmed.
  ADD KEY follows_sync_pending (sync_pending, update_time);

ALTER TABLE followers
  ADD COLUMN state TINYINT UNSIGNED NOT NULL DEFAULT 1 AFTER follower_id,
  ADD COLUMN version BIGINT UNSIGNED NOT NULL DEFAULT 1 AFTER state,
  ADD COLUMN follow_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) AFTER version,
  -- ListFollowers: newest follow first, keyset (follow_time, follower_id).
  ADD KEY followers_by_time (followee_id, state, follow_time, follower_id);

UPDATE follows SET follow_time = create_time, update_time = create_time;
UPDATE followers SET follow_time = create_time;
