-- Replies (issue 19; services/tweet/README.md, "Replies and threads").
-- Portable across MariaDB 10.11+ and MySQL 8.0+.
--
-- tweet_replies: the reply edge, on the PARENT's shard (sharded by the
-- parent's author, like tweets): the direct replies of a tweet, paged oldest
-- first by reply id, and the source of tweets.reply_count, which changes in
-- the same transaction, so the count is exact. parent_author_id is the
-- sharding column (the vschema's vindex). The reply itself lives on its
-- own author's shard; the edge is written after it (PostTweet, or the tweet
-- service's consumer of TweetCreated when that step failed).
--   state  1 live, 0 deleted. A deletion is final: an edge only ever goes
--          absent -> live -> deleted or absent -> deleted, so the events that
--          write it apply in any order, any number of times.
CREATE TABLE IF NOT EXISTS tweet_replies (
  parent_id BIGINT UNSIGNED NOT NULL,
  parent_author_id BIGINT UNSIGNED NOT NULL,
  reply_id BIGINT UNSIGNED NOT NULL,
  reply_author_id BIGINT UNSIGNED NOT NULL,
  state TINYINT UNSIGNED NOT NULL,
  PRIMARY KEY (parent_id, reply_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Signed, as the other counters: a racing decrement cannot fail on underflow.
ALTER TABLE tweets
  ADD COLUMN reply_count INT NOT NULL DEFAULT 0;
