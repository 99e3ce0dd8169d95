-- Notifications (issue 20; services/notification/README.md).
-- Portable across MariaDB 10.11+ and MySQL 8.0+.
--
-- notifications: a user's inbox, on the RECIPIENT's shard. One row per cause,
-- the unique key that makes the consumer idempotent:
--   cause       1 follow, 2 like, 3 repost, 4 a tweet (reply, quote or mention)
--   subject_id  follow: 0; like, repost: the tweet; a tweet: the new tweet
--   actor_id    who did it
-- A redelivered event finds its row and changes nothing. An undone cause
-- (unfollow, unlike, unrepost, deleted tweet) leaves the row as a tombstone
-- (state 0) with the version that undid it, so an older event arriving late
-- cannot bring it back:
--   version     the cause's version: the follow edge's or like's version, the
--               repost's id, 1 for a tweet
--   state       1 shown, 0 undone (or a placeholder inside its transaction)
--   id          the inbox position, a Snowflake minted when the row was
--               (re)shown: newest first, keyset pages, the read position
--   kind        NotificationKind (a tweet that both replies to and mentions
--               someone is one notification, the reply)
-- Index notifications_inbox serves the pages and the unread count (the
-- unread rows are one range of it).
CREATE TABLE IF NOT EXISTS notifications (
  recipient_id BIGINT UNSIGNED NOT NULL,
  cause TINYINT UNSIGNED NOT NULL,
  subject_id BIGINT UNSIGNED NOT NULL,
  actor_id BIGINT UNSIGNED NOT NULL,
  id BIGINT UNSIGNED NOT NULL,
  kind TINYINT UNSIGNED NOT NULL,
  state TINYINT UNSIGNED NOT NULL,
  version BIGINT UNSIGNED NOT NULL,
  event_time DATETIME(6) NOT NULL,
  PRIMARY KEY (recipient_id, cause, subject_id, actor_id),
  KEY notifications_inbox (recipient_id, state, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- notification_sources: whom a tweet notified (replies, quotes, mentions), on
-- the tweet AUTHOR's shard, so its deletion finds those inboxes; a row with
-- recipient_id 0 marks the tweet deleted (a notification of it arriving
-- after the deletion is not shown).
CREATE TABLE IF NOT EXISTS notification_sources (
  author_id BIGINT UNSIGNED NOT NULL,
  tweet_id BIGINT UNSIGNED NOT NULL,
  recipient_id BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (author_id, tweet_id, recipient_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- notification_reads: a user's read position, on the user's shard: every
-- notification with an id at or below read_through_id is read.
CREATE TABLE IF NOT EXISTS notification_reads (
  user_id BIGINT UNSIGNED NOT NULL,
  read_through_id BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
