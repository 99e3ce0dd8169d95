-- Tweets, likes and the tweet id lookup (docs/architecture.md, "Tweets").
-- Portable across MariaDB 10.11+ and MySQL 8.0+. Nothing wrote to tweets or
-- likes before this migration.
--
-- tweets (the author's shard, 0001) gets:
--   text      up to 280 grapheme clusters; one can be 10 code points long
--             (the longest emoji sequences), so 2800 code points
--   hashtags, mentions, urls
--             JSON arrays of what PostTweet found in the text (mentions as
--             decimal user id strings), kept as text like media_ids
--   version   1 when posted, +1 on every change of the row (a like, an
--             unlike, the deletion): the order of cached copies. A cache
--             write replaces only an older version.
ALTER TABLE tweets
  MODIFY COLUMN text VARCHAR(2800) NOT NULL,
  ADD COLUMN hashtags TEXT NOT NULL,
  ADD COLUMN mentions TEXT NOT NULL,
  ADD COLUMN urls TEXT NOT NULL,
  ADD COLUMN version BIGINT UNSIGNED NOT NULL DEFAULT 1;

-- Tweet id -> author, sharded by tweet_id (Vitess `hash`): a bare tweet id
-- finds the tweet's shard (the author's) through it. Written before the
-- tweet, never changed: a row whose tweet never appeared reads as NotFound.
CREATE TABLE IF NOT EXISTS tweet_lookup (
  tweet_id BIGINT UNSIGNED NOT NULL,
  author_id BIGINT UNSIGNED NOT NULL,
  create_time DATETIME(6) NOT NULL,
  PRIMARY KEY (tweet_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The like edge, on the TWEET's shard (sharded by author_id, the tweet's
-- author): the source of truth, changed in the same transaction as
-- tweets.like_count, so the count is exact.
--   state      1 liked, 0 unliked (an unlike keeps the row and its version)
--   version    +1 for every like or unlike that changes the state, under the
--              tweet row's lock; carried by TweetLiked/TweetUnliked
--   like_time  when the current (or, unliked, the last) like was made
CREATE TABLE IF NOT EXISTS tweet_likes (
  tweet_id BIGINT UNSIGNED NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  author_id BIGINT UNSIGNED NOT NULL,
  state TINYINT UNSIGNED NOT NULL,
  version BIGINT UNSIGNED NOT NULL,
  like_time DATETIME(6) NOT NULL,
  update_time DATETIME(6) NOT NULL,
  PRIMARY KEY (tweet_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- likes (the liker's shard, 0001) becomes the liker's index of tweet_likes,
-- kept by the tweet service's event consumer from TweetLiked/TweetUnliked:
-- it only ever moves to a higher version, so events apply in any order.
--   author_id  the tweet's author: ListLikedTweets reads the tweet's shard
--              without the lookup
ALTER TABLE likes
  ADD COLUMN author_id BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER tweet_id,
  ADD COLUMN state TINYINT UNSIGNED NOT NULL DEFAULT 0 AFTER author_id,
  ADD COLUMN version BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER state,
  ADD COLUMN like_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) AFTER version,
  DROP KEY likes_by_time,
  -- ListLikedTweets: newest like first, keyset (like_time, tweet_id).
  ADD KEY likes_by_like_time (user_id, state, like_time, tweet_id);
