-- The outbox gets the two columns its routing and de-duplication need:
--   user_id   the user whose change the event announces: the table's sharding
--             column (Vitess `hash`), so a reshard moves unsent rows with
--             their user instead of copying or stranding them;
--   event_id  a Snowflake id, unique across shards and reshards: the
--             JetStream message id that makes re-publishing harmless.
-- Nothing wrote to the outbox before this migration.
ALTER TABLE outbox
  ADD COLUMN user_id BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER id,
  ADD COLUMN event_id BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER user_id,
  ADD UNIQUE KEY outbox_event (event_id);
