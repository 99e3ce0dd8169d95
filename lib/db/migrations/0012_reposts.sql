-- Reposts (issue 19; services/tweet/README.md, "Reposts").
-- Portable across MariaDB 10.11+ and MySQL 8.0+.
--
-- A repost is a tweet of the reposter's with no content of its own, naming
-- the original in tweets.repost_of_tweet_id: fan-out, user timelines and
-- deletes treat it as any tweet, and reads show the original in its place.
--
-- tweet_reposts: the repost edge, on the ORIGINAL's shard (its author's),
-- one row per (tweet, reposter), the source of tweets.repost_count, changed
-- with it under the original row's lock.
--   state      2 pending (the repost tweet is being written; repost_id is
--              fixed, so a retry writes the same one), 1 live, 0 taken back
--   repost_id  the reposter's repost tweet
CREATE TABLE IF NOT EXISTS tweet_reposts (
  tweet_id BIGINT UNSIGNED NOT NULL,
  tweet_author_id BIGINT UNSIGNED NOT NULL,
  reposter_id BIGINT UNSIGNED NOT NULL,
  repost_id BIGINT UNSIGNED NOT NULL,
  state TINYINT UNSIGNED NOT NULL,
  PRIMARY KEY (tweet_id, reposter_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE tweets
  ADD COLUMN repost_of_tweet_id BIGINT UNSIGNED NULL,
  ADD COLUMN repost_count INT NOT NULL DEFAULT 0;
