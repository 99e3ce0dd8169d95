-- Sessions (issue 21, item 3; services/user/README.md, "Sessions").
-- Portable across MariaDB 10.11+ and MySQL 8.0+.
--
-- user_sessions: one row per sign-up, log-in or password change of a user,
-- on the user's shard. A token names its session (the `sid` claim); the
-- gateways refuse tokens of sessions that ended, from the NATS KV bucket
-- chirp_sessions_ended, which the user service writes when it ends one.
--   end_time          NULL while the session is live
--   last_active_time  when a call last presented it (the gateways report
--                     at most one call per session every few minutes)
--   expire_time       when its last token expires; ListSessions leaves
--                     expired ones out
CREATE TABLE IF NOT EXISTS user_sessions (
  user_id BIGINT UNSIGNED NOT NULL,
  session_id BIGINT UNSIGNED NOT NULL,
  create_time DATETIME(6) NOT NULL,
  last_active_time DATETIME(6) NOT NULL,
  expire_time DATETIME(6) NOT NULL,
  end_time DATETIME(6) NULL,
  user_agent VARCHAR(256) NOT NULL DEFAULT '',
  PRIMARY KEY (user_id, session_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
