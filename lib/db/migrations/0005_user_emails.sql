-- Email -> user id, for unique emails (without regard to case) and nothing
-- else: log-in is by handle. Sharded like user_handles: Vitess `binary_md5` of
-- email_lower, the address with its ASCII letters lower-cased (the services
-- normalise; protovalidate's email rule admits ASCII addresses only). Binary
-- collation: equality must be exact. A row is a claim, written before the
-- user row it points at (docs/architecture.md, "Accounts and sessions"):
-- a claim whose user row never appeared is taken over after a grace period.
-- Portable across MariaDB 10.11+ and MySQL 8.0+.

CREATE TABLE IF NOT EXISTS user_emails (
  email_lower VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  create_time DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (email_lower)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
