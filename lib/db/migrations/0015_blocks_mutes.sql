-- Blocks and mutes (issue 21, items 1-2; services/graph/README.md, "Blocks
-- and mutes"). Portable across MariaDB 10.11+ and MySQL 8.0+.
--
-- blocks: the blocker's side, on the blocker's shard: the source of truth.
--   state        1 blocking, 0 unblocked (the row stays, so its version does)
--   version      +1 for every block or unblock that changes the state, set
--                under the row's lock; the events carry it
--   block_time   when the current (or last) block began: ListBlocked's order
--   sync_pending 1 from a change until the blocked user's copy holds it
-- blocked_by: the copy on the blocked user's shard, moved only to a higher
--   version (by the call, or by the graph's consumer of the block events), so
--   "who blocks me" is one index range on my own shard. A follow checks both
--   tables on the follower's shard, in its own transaction.
-- mutes: the muter's, on the muter's shard; a row per standing mute (an
--   unmute deletes it: nothing else needs its history).
CREATE TABLE IF NOT EXISTS blocks (
  blocker_id BIGINT UNSIGNED NOT NULL,
  blocked_id BIGINT UNSIGNED NOT NULL,
  state TINYINT UNSIGNED NOT NULL,
  version BIGINT UNSIGNED NOT NULL,
  block_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  update_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  sync_pending TINYINT UNSIGNED NOT NULL DEFAULT 0,
  PRIMARY KEY (blocker_id, blocked_id),
  -- ListBlocked: newest block first, keyset (block_time, blocked_id).
  KEY blocks_by_time (blocker_id, state, block_time, blocked_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS blocked_by (
  blocked_id BIGINT UNSIGNED NOT NULL,
  blocker_id BIGINT UNSIGNED NOT NULL,
  state TINYINT UNSIGNED NOT NULL,
  version BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (blocked_id, blocker_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS mutes (
  muter_id BIGINT UNSIGNED NOT NULL,
  muted_id BIGINT UNSIGNED NOT NULL,
  mute_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (muter_id, muted_id),
  -- ListMuted: newest mute first, keyset (mute_time, muted_id).
  KEY mutes_by_time (muter_id, mute_time, muted_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
