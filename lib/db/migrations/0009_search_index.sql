-- The search index (docs/architecture.md, "Search and trends"): an inverted
-- index of our own in ordinary InnoDB tables, sharded by the tweet id
-- (Vitess `hash`, like tweet_lookup), kept by the search service's durable
-- consumer of TweetCreated/TweetDeleted. Portable across MariaDB 10.11+ and
-- MySQL 8.0+: no FULLTEXT, so no server-wide token size or stopword setting
-- decides what can be found.
--
-- search_docs: one row per tweet the index has heard of.
--   state   1 indexed, 0 deleted: a tombstone, so a TweetCreated handled
--           after its TweetDeleted (redelivery, parallel handlers) is not
--           indexed again
--   body    the text as the tokenizer left it, tokens joined by single
--           spaces with one space before and after (` cafe au lait `):
--           quoted phrases are checked against it with INSTR, byte for
--           byte (binary collation). Empty for a tombstone.
--   terms   every posting term of the tweet, space-separated: what a
--           deletion removes. Empty for a tombstone.
CREATE TABLE IF NOT EXISTS search_docs (
  tweet_id BIGINT UNSIGNED NOT NULL,
  author_id BIGINT UNSIGNED NOT NULL,
  state TINYINT UNSIGNED NOT NULL,
  body TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  terms TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  update_time DATETIME(6) NOT NULL,
  PRIMARY KEY (tweet_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- search_postings: the posting lists, one row per (term, tweet) on the
-- tweet's shard. The clustered key is the list in tweet id order, so the
-- newest matches of a term are one backward range read that stops at the
-- LIMIT, and "is tweet t in term x's list" is one primary key lookup.
--   term    UTF-8 bytes, compared as bytes (the service normalises case and
--           accents before writing or asking):
--             word          a text token (`cafe`, `a`, `the`, `北`)
--             #tag          a hashtag (`#rustlang`)
--             @<user id>    a mention (`@12345`)
--             from:<id>     the author (`from:12345`)
CREATE TABLE IF NOT EXISTS search_postings (
  term VARBINARY(100) NOT NULL,
  tweet_id BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (term, tweet_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
