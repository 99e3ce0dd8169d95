-- Account deletion (issue 21, item 4; docs/decisions/0025-account-deletion-by-events.md).
-- Portable across MariaDB 10.11+ and MySQL 8.0+.
--
-- media_by_owner: a deleted account's uploads, in id order, found without
-- scanning the shard's media table (the media service's consumer of
-- UserDeleted deletes them in batches).
ALTER TABLE media ADD KEY media_by_owner (owner_id, id);
