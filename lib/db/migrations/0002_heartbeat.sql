-- Replication heartbeat, one row per shard database. The topology manager
-- updates ts on the primary every CHIRP_TOPOLOGY_HEARTBEAT_MS (250 ms by
-- default); a replica's lag is then how old the replicated row is:
--   SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) FROM heartbeat WHERE id = 1
-- (the shard router's read-routing contract). ts is UTC, written with
-- UTC_TIMESTAMP(6), so the session time zone never matters. Portable across
-- MariaDB 10.11+ and MySQL 8.0+.

CREATE TABLE IF NOT EXISTS heartbeat (
  id TINYINT UNSIGNED NOT NULL,
  ts DATETIME(6) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The writer only ever UPDATEs this row, so it must exist; re-running is harmless.
INSERT INTO heartbeat (id, ts) VALUES (1, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE id = id;
