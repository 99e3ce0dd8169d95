-- Media metadata (docs/architecture.md, "Media"). Portable across MariaDB
-- 10.11+ and MySQL 8.0+.
--
-- media: one row per upload, on the owner's shard (Vitess `hash` of owner_id).
--   sha256        lower-case hex SHA-256 of the file as served (an image with
--                 its metadata stripped; a video as uploaded): its name in the
--                 content-addressed blob store. Several rows may share it.
--   stored_bytes  size of that file; size_bytes is the upload's own size.
--   thumb_*       the thumbnail's blob, or NULL (videos).
--   duration_ms   videos whose container states it; NULL otherwise.
--   tweet_id      the tweet it is attached to; NULL until AttachMedia. Rows
--                 that stay NULL past the grace period are swept, and their
--                 blobs deleted when no other row names them.
CREATE TABLE IF NOT EXISTS media (
  id BIGINT UNSIGNED NOT NULL,
  owner_id BIGINT UNSIGNED NOT NULL,
  kind TINYINT UNSIGNED NOT NULL,                 -- MediaKind: 1 image, 2 video
  content_type VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  size_bytes BIGINT UNSIGNED NOT NULL,
  sha256 CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  stored_bytes BIGINT UNSIGNED NOT NULL,
  width INT UNSIGNED NOT NULL DEFAULT 0,
  height INT UNSIGNED NOT NULL DEFAULT 0,
  duration_ms BIGINT UNSIGNED NULL,
  thumb_sha256 CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  thumb_bytes BIGINT UNSIGNED NULL,
  tweet_id BIGINT UNSIGNED NULL,
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  attach_time DATETIME(6) NULL,
  PRIMARY KEY (id),
  -- The sweep: unattached rows, oldest first.
  KEY media_unattached (tweet_id, create_time),
  -- Whether a blob is still named by a row before it is deleted.
  KEY media_by_sha256 (sha256),
  KEY media_by_thumb_sha256 (thumb_sha256)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Media id -> owner, sharded by media_id (Vitess `hash`): finds the owner's
-- shard from a bare media id (GetMedia, BatchGetMedia, ReadMedia). Written
-- before the media row and deleted after it (the sweep), so every media row
-- has one; a lookup row whose media row never appeared (an upload that
-- crashed in between) reads as NotFound.
CREATE TABLE IF NOT EXISTS media_lookup (
  media_id BIGINT UNSIGNED NOT NULL,
  owner_id BIGINT UNSIGNED NOT NULL,
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (media_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
