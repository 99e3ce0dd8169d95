-- Quote posts (issue 19; services/tweet/README.md, "Quotes").
-- Portable across MariaDB 10.11+ and MySQL 8.0+.
--
-- tweets.quote_tweet_id: the tweet a tweet quotes (NULL: none); it stays when
-- the quoted tweet is deleted.
-- tweet_quotes: the quote edge, on the QUOTED tweet's shard, exactly as
-- tweet_replies (0010) is for replies: the source of tweets.quote_count,
-- changed with it under the quoted row's lock; absent -> live -> deleted or
-- absent -> deleted. quoted_author_id is the sharding column.
CREATE TABLE IF NOT EXISTS tweet_quotes (
  quoted_id BIGINT UNSIGNED NOT NULL,
  quoted_author_id BIGINT UNSIGNED NOT NULL,
  quote_id BIGINT UNSIGNED NOT NULL,
  quote_author_id BIGINT UNSIGNED NOT NULL,
  state TINYINT UNSIGNED NOT NULL,
  PRIMARY KEY (quoted_id, quote_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE tweets
  ADD COLUMN quote_tweet_id BIGINT UNSIGNED NULL,
  ADD COLUMN quote_count INT NOT NULL DEFAULT 0;
