// The Vitess VSchema of the keyspace: which vindex places each table's rows.
// It is what `vtctldclient ApplyVSchema` takes (the vschema.Keyspace message
// as JSON), so the same data can be served by Vitess. Choices are explained
// in shard-config/README.md ("VSchema").
import type { ShardConfig } from "../lib/shard/shard-config.js";
import { ShardMap } from "../lib/shard/keyrange.js";

/** vschema.Vindex */
export interface VSchemaVindex {
  type: string;
  params?: Record<string, string>;
  owner?: string;
}

/** vschema.ColumnVindex (the single-column form). */
export interface VSchemaColumnVindex {
  column: string;
  name: string;
}

/** vschema.Table: a sharded table lists column_vindexes, the first being its primary vindex. */
export interface VSchemaTable {
  type?: "reference";
  column_vindexes?: VSchemaColumnVindex[];
}

/** vschema.Keyspace */
export interface VSchemaKeyspace {
  sharded: boolean;
  vindexes: Record<string, VSchemaVindex>;
  tables: Record<string, VSchemaTable>;
}

/**
 * Builds the VSchema for `config.keyspace`. The shards are not part of a
 * VSchema, but they are checked here so a broken ring is never exported.
 */
export function buildVSchema(config: ShardConfig): VSchemaKeyspace {
  new ShardMap(config.shards);
  const byUser = (column: string): VSchemaTable => ({ column_vindexes: [{ column, name: "hash" }] });
  return {
    sharded: true,
    vindexes: {
      // Functional and unique: keyspace id = DES(id), reversible.
      hash: { type: "hash" },
      // Functional and unique: keyspace id = md5(bytes); for the handle and email lookup tables.
      binary_md5: { type: "binary_md5" },
    },
    tables: {
      users: byUser("id"),
      user_handles: { column_vindexes: [{ column: "handle_lower", name: "binary_md5" }] },
      user_emails: { column_vindexes: [{ column: "email_lower", name: "binary_md5" }] },
      user_sessions: byUser("user_id"),
      follows: byUser("follower_id"),
      followers: byUser("followee_id"),
      tweets: byUser("author_id"),
      // A like edge lives with its tweet (the author's shard), next to
      // tweets.like_count; likes is the liker's index of it. tweet_lookup
      // (tweet id -> author) by the tweet id, with the same `hash` (README
      // "tweets").
      tweet_likes: byUser("author_id"),
      // A reply edge with its parent tweet, on the parent's author's shard.
      tweet_replies: byUser("parent_author_id"),
      // A quote edge with the quoted tweet, on its author's shard.
      tweet_quotes: byUser("quoted_author_id"),
      // A repost edge with the reposted tweet, on its author's shard.
      tweet_reposts: byUser("tweet_author_id"),
      tweet_lookup: byUser("tweet_id"),
      likes: byUser("user_id"),
      // Media rows with their owner; media_lookup (media id -> owner) by the
      // media id, with the same `hash` (README "media").
      media: byUser("owner_id"),
      media_lookup: byUser("media_id"),
      // The search index is document-partitioned by tweet id with `hash`
      // (README "search"): a tweet's doc row and its postings sit together.
      search_docs: byUser("tweet_id"),
      search_postings: byUser("tweet_id"),
      // A notification with its recipient; the sources of a tweet's
      // notifications with the tweet's author; a read position with its user.
      notifications: byUser("recipient_id"),
      notification_sources: byUser("author_id"),
      notification_reads: byUser("user_id"),
      // A block with its blocker; its copy with the blocked user; a mute with
      // its muter (migration 0015).
      blocks: byUser("blocker_id"),
      blocked_by: byUser("blocked_id"),
      mutes: byUser("muter_id"),
      // A push subscription with its user (migration 0016).
      push_subscriptions: byUser("user_id"),
      // The user whose shard-local change the row announces; a migration adds
      // the column (README "outbox").
      outbox: byUser("user_id"),
      // Per-shard tables no column routes: the migrator's bookkeeping (the
      // same rows everywhere) and the replication heartbeat (one row, written
      // on each primary, read only with the shard named). README "reference".
      schema_migrations: { type: "reference" },
      heartbeat: { type: "reference" },
    },
  };
}
