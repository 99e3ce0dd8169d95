-- Web Push subscriptions (issue 20, item 3; services/notification/README.md, "Web Push").
-- Portable across MariaDB 10.11+ and MySQL 8.0+.
--
-- push_subscriptions: a browser's PushSubscription (RFC 8030) registered by a
-- user, on the USER's shard; several per user (one per browser or device).
--   endpoint_hash  SHA-256 of the endpoint URL as stored (WHATWG-normalised):
--                  the key RegisterPush upserts and UnregisterPush deletes by,
--                  since the URL itself is too long for a key
--   endpoint       the push service's URL (https), up to 2048 characters
--   p256dh, auth   the subscription's P-256 public key and auth secret,
--                  base64url: what each message is encrypted to (RFC 8291)
--   create_time    when it was (last) registered; the oldest go first when a
--                  user has more than the service keeps
-- A subscription the push service answers 404 or 410 for is deleted.
CREATE TABLE IF NOT EXISTS push_subscriptions (
  user_id BIGINT UNSIGNED NOT NULL,
  endpoint_hash BINARY(32) NOT NULL,
  endpoint VARCHAR(2048) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  p256dh VARCHAR(256) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  auth VARCHAR(256) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  create_time DATETIME(6) NOT NULL,
  PRIMARY KEY (user_id, endpoint_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
