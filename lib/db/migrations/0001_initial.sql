-- Core tables of the `chirp` keyspace. Applied to every shard database; a
-- row lives on the shard of its sharding id (ARCHITECTURE section 4):
--   users, follows, likes, outbox, tweets  -> shard of the owning user id
--   followers                              -> shard of followee_id
--   user_handles                           -> shard of handle_lower
-- Ids are 64-bit Snowflake ids (BIGINT UNSIGNED). No foreign keys: the rows a
-- key would point at usually live on another shard. Times are UTC (the
-- services set time_zone = '+00:00'). Portable across MariaDB 10.11+ and
-- MySQL 8.0+: no JSON type (it differs between them), no engine-only syntax.
-- Counters are signed so a racing decrement cannot fail on an unsigned
-- underflow; repair jobs fix drift.

CREATE TABLE IF NOT EXISTS users (
  id BIGINT UNSIGNED NOT NULL,
  handle VARCHAR(32) NOT NULL,          -- as the user typed it; lookups go through user_handles
  display_name VARCHAR(64) NOT NULL DEFAULT '',
  bio VARCHAR(320) NOT NULL DEFAULT '',
  email VARCHAR(254) NOT NULL,
  password_hash VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  birth_date DATE NULL,
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  last_login_time DATETIME(6) NULL,
  follower_count BIGINT NOT NULL DEFAULT 0,
  following_count BIGINT NOT NULL DEFAULT 0,
  tweet_count BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Handle -> user id, sharded by the lower-cased handle. Binary collation:
-- the services normalise case, and equality must be exact.
CREATE TABLE IF NOT EXISTS user_handles (
  handle_lower VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (handle_lower)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Follow edge, follower's side (on the follower's shard): "who do I follow".
CREATE TABLE IF NOT EXISTS follows (
  follower_id BIGINT UNSIGNED NOT NULL,
  followee_id BIGINT UNSIGNED NOT NULL,
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (follower_id, followee_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The same edge, followee's side (on the followee's shard): "who follows me".
CREATE TABLE IF NOT EXISTS followers (
  followee_id BIGINT UNSIGNED NOT NULL,
  follower_id BIGINT UNSIGNED NOT NULL,
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (followee_id, follower_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Tweets on the author's shard. Deletion is soft (delete_time) so fan-out
-- and caches can drop it; media_ids is a JSON array of decimal id strings
-- kept as text.
CREATE TABLE IF NOT EXISTS tweets (
  id BIGINT UNSIGNED NOT NULL,
  author_id BIGINT UNSIGNED NOT NULL,
  text VARCHAR(1000) NOT NULL,
  reply_to_tweet_id BIGINT UNSIGNED NULL,
  media_ids VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '[]',
  latitude DOUBLE NULL,
  longitude DOUBLE NULL,
  like_count BIGINT NOT NULL DEFAULT 0,
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  delete_time DATETIME(6) NULL,
  PRIMARY KEY (id),
  KEY tweets_by_author (author_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Likes on the liker's shard; the tweet's like_count lives with the tweet.
CREATE TABLE IF NOT EXISTS likes (
  user_id BIGINT UNSIGNED NOT NULL,
  tweet_id BIGINT UNSIGNED NOT NULL,
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (user_id, tweet_id),
  KEY likes_by_time (user_id, create_time, tweet_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Transactional outbox: written in the same transaction as the change it
-- announces; a relay publishes unsent rows to JetStream and sets sent_time.
-- id is only unique within this shard: message ids must add the shard name.
CREATE TABLE IF NOT EXISTS outbox (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  subject VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  payload BLOB NOT NULL,
  headers TEXT NULL,                    -- JSON object of message headers (request id...)
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  sent_time DATETIME(6) NULL,
  PRIMARY KEY (id),
  KEY outbox_unsent (sent_time, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
