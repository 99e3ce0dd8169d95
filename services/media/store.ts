// All SQL of the media service. Rows out, never proto messages.
//
// Where rows live (migration 0008; shard-config/README.md):
//   media         shard of hash(owner_id)
//   media_lookup  shard of hash(media_id): media id -> owner id
// The lookup row is written before the media row and deleted after it, so a
// media row is always reachable from its id.
import type { Announce } from "../../lib/events/outbox.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import type { Queryable, ShardRouter } from "../../lib/shard/router.js";

/** A media row, parsed. Plain data: presentation is present.ts's job. */
export interface MediaRow {
  readonly id: bigint;
  readonly ownerId: bigint;
  /** MediaKind: 1 image, 2 video. */
  readonly kind: number;
  readonly contentType: string;
  /** The upload's own size. */
  readonly sizeBytes: number;
  /** Hex SHA-256 of the file as served: its blob's name. */
  readonly sha256: string;
  /** Size of that file. */
  readonly storedBytes: number;
  readonly width: number;
  readonly height: number;
  readonly durationMs: number | null;
  /** The thumbnail's blob and size; null for videos. */
  readonly thumbSha256: string | null;
  readonly thumbBytes: number | null;
  /** Null until AttachMedia. */
  readonly tweetId: bigint | null;
  readonly createTime: Date;
}

export interface NewMedia {
  readonly id: bigint;
  readonly ownerId: bigint;
  readonly kind: number;
  readonly contentType: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly storedBytes: number;
  readonly width: number;
  readonly height: number;
  readonly durationMs: number | undefined;
  readonly thumbSha256: string | undefined;
  readonly thumbBytes: number | undefined;
}

export type AttachResult =
  | { readonly kind: "attached"; readonly rows: readonly MediaRow[] }
  /** Ids with no row on the caller's shard, and rows owned by someone else there. Nothing was changed. */
  | { readonly kind: "refused"; readonly missing: readonly bigint[]; readonly foreign: readonly bigint[] }
  /** Rows already attached to another tweet. Nothing was changed. */
  | { readonly kind: "conflict"; readonly ids: readonly bigint[] };

export interface SweepCandidate {
  readonly id: bigint;
  readonly sha256: string;
  readonly thumbSha256: string | null;
}

export type ReadMode = "reader" | "primary";

const COLUMNS =
  "id, owner_id, kind, content_type, size_bytes, sha256, stored_bytes, width, height, duration_ms, thumb_sha256, thumb_bytes, tweet_id, create_time";

export interface MediaStore {
  /** The lookup row, on the media id's shard primary. */
  insertLookup(mediaId: bigint, ownerId: bigint): Promise<void>;
  deleteLookup(mediaId: bigint): Promise<void>;
  /** The media row and its event (`announce`: MediaUploaded), in one transaction on the owner's shard. */
  createMedia(media: NewMedia, announce: Announce<MediaRow>): Promise<MediaRow>;
  /** Owner of a media id through the lookup. */
  ownerOf(mediaId: bigint, mode: ReadMode): Promise<bigint | undefined>;
  media(ownerId: bigint, mediaId: bigint, mode: ReadMode): Promise<MediaRow | undefined>;
  /** The rows among `ids` that exist: lookups, then rows, per shard in parallel; reader first, then primary for misses. Any order. */
  mediaByIds(ids: readonly bigint[]): Promise<MediaRow[]>;
  /**
   * Attaches the caller's `ids` to `tweetId` in one transaction on the
   * caller's shard, all or none; rows already on `tweetId` stay as they are.
   */
  attach(caller: bigint, tweetId: bigint, ids: readonly bigint[]): Promise<AttachResult>;
  /** Unattached rows older than `graceMs`, oldest first, from one shard's primary. */
  sweepCandidates(shard: ShardInfo, graceMs: number, limit: number): Promise<SweepCandidate[]>;
  /** Deletes the row if it is still unattached and older than `graceMs`; false if it was attached meanwhile. */
  deleteUnattached(shard: ShardInfo, mediaId: bigint, graceMs: number): Promise<boolean>;
  /** A page of the owner's uploads (attached or not), ascending by id, from the primary (index media_by_owner). */
  ownerMedia(ownerId: bigint, limit: number): Promise<SweepCandidate[]>;
  /** Deletes the owner's row, attached or not. */
  deleteOwned(ownerId: bigint, mediaId: bigint): Promise<void>;
  /** Whether any media row on any shard names the blob (as its file or its thumbnail). */
  blobReferenced(sha256: string): Promise<boolean>;
}

interface RawMedia {
  id: string;
  owner_id: string;
  kind: number;
  content_type: string;
  size_bytes: string;
  sha256: string;
  stored_bytes: string;
  width: number;
  height: number;
  duration_ms: string | null;
  thumb_sha256: string | null;
  thumb_bytes: string | null;
  tweet_id: string | null;
  create_time: Date;
}

// Sizes are BIGINT columns, read as strings; the upload limits keep them far
// below 2^53, so numbers hold them exactly. A duration (what the container
// states) is a number as the API's Duration takes it.
function parseMedia(r: RawMedia): MediaRow {
  return {
    id: BigInt(r.id),
    ownerId: BigInt(r.owner_id),
    kind: Number(r.kind),
    contentType: r.content_type,
    sizeBytes: Number(r.size_bytes),
    sha256: r.sha256,
    storedBytes: Number(r.stored_bytes),
    width: Number(r.width),
    height: Number(r.height),
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    thumbSha256: r.thumb_sha256,
    thumbBytes: r.thumb_bytes === null ? null : Number(r.thumb_bytes),
    tweetId: r.tweet_id === null ? null : BigInt(r.tweet_id),
    createTime: r.create_time,
  };
}

export function createMediaStore(router: ShardRouter): MediaStore {
  const rowsOn = async (db: Queryable, mediaIds: readonly bigint[], lock = ""): Promise<MediaRow[]> => {
    if (mediaIds.length === 0) return [];
    const marks = mediaIds.map(() => "?").join(", ");
    return (await db.query<RawMedia>(`SELECT ${COLUMNS} FROM chirp.media WHERE id IN (${marks})${lock}`, mediaIds)).map(parseMedia);
  };

  const lookupsOn = async (db: Queryable, mediaIds: readonly bigint[]): Promise<Array<{ mediaId: bigint; ownerId: bigint }>> => {
    if (mediaIds.length === 0) return [];
    const marks = mediaIds.map(() => "?").join(", ");
    const rows = await db.query<{ media_id: string; owner_id: string }>(
      `SELECT media_id, owner_id FROM chirp.media_lookup WHERE media_id IN (${marks})`,
      mediaIds,
    );
    return rows.map((r) => ({ mediaId: BigInt(r.media_id), ownerId: BigInt(r.owner_id) }));
  };

  /** Per shard: the reader, then the primary for what the reader lacked (rows younger than the lag bound). */
  async function readThrough<K, R>(items: readonly K[], shardOf: (k: K) => ShardInfo, read: (db: Queryable, ks: K[]) => Promise<R[]>, keyOf: (r: R) => bigint, keyOfItem: (k: K) => bigint): Promise<R[]> {
    return router.scatter(items, shardOf, async (shard, ks) => {
      const first = await read(router.reader(shard), ks);
      const found = new Set(first.map(keyOf));
      const missing = ks.filter((k) => !found.has(keyOfItem(k)));
      return missing.length === 0 ? first : [...first, ...(await read(router.primary(shard), missing))];
    });
  }

  return {
    async insertLookup(mediaId, ownerId) {
      await router.primaryForUser(mediaId).execute("INSERT INTO chirp.media_lookup (media_id, owner_id) VALUES (?, ?)", [mediaId, ownerId]);
    },

    async deleteLookup(mediaId) {
      await router.primaryForUser(mediaId).execute("DELETE FROM chirp.media_lookup WHERE media_id = ?", [mediaId]);
    },

    async createMedia(m, announce) {
      return router.transaction(router.shardForUser(m.ownerId), async (tx) => {
        await tx.execute(
          `INSERT INTO chirp.media (id, owner_id, kind, content_type, size_bytes, sha256, stored_bytes, width, height, duration_ms, thumb_sha256, thumb_bytes)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [m.id, m.ownerId, m.kind, m.contentType, m.sizeBytes, m.sha256, m.storedBytes, m.width, m.height, m.durationMs ?? null, m.thumbSha256 ?? null, m.thumbBytes ?? null],
        );
        const [row] = await rowsOn(tx, [m.id]);
        if (row === undefined) throw new Error("media row vanished inside its transaction");
        await announce(tx, row);
        return row;
      });
    },

    async ownerOf(mediaId, mode) {
      const db = mode === "primary" ? router.primaryForUser(mediaId) : router.readerForUser(mediaId);
      const rows = await db.query<{ owner_id: string }>("SELECT owner_id FROM chirp.media_lookup WHERE media_id = ?", [mediaId]);
      return rows[0] === undefined ? undefined : BigInt(rows[0].owner_id);
    },

    async media(ownerId, mediaId, mode) {
      const db = mode === "primary" ? router.primaryForUser(ownerId) : router.readerForUser(ownerId);
      return (await rowsOn(db, [mediaId]))[0];
    },

    async mediaByIds(mediaIds) {
      if (mediaIds.length === 0) return [];
      const lookups = await readThrough(
        mediaIds,
        (id) => router.shardForUser(id),
        lookupsOn,
        (r) => r.mediaId,
        (id) => id,
      );
      return readThrough(
        lookups,
        (l) => router.shardForUser(l.ownerId),
        (db, ls) => rowsOn(db, ls.map((l) => l.mediaId)),
        (r) => r.id,
        (l) => l.mediaId,
      );
    },

    async attach(caller, tweetId, mediaIds) {
      return router.transaction(router.shardForUser(caller), async (tx) => {
        const rows = await rowsOn(tx, mediaIds, " FOR UPDATE");
        const byId = new Map(rows.map((r) => [r.id, r]));
        const missing = mediaIds.filter((id) => !byId.has(id));
        const foreign = rows.filter((r) => r.ownerId !== caller).map((r) => r.id);
        if (missing.length > 0 || foreign.length > 0) return { kind: "refused", missing, foreign } as const;
        const taken = rows.filter((r) => r.tweetId !== null && r.tweetId !== tweetId).map((r) => r.id);
        if (taken.length > 0) return { kind: "conflict", ids: taken } as const;
        const fresh = rows.filter((r) => r.tweetId === null).map((r) => r.id);
        if (fresh.length > 0) {
          await tx.execute(
            `UPDATE chirp.media SET tweet_id = ?, attach_time = NOW(6) WHERE id IN (${fresh.map(() => "?").join(", ")}) AND tweet_id IS NULL`,
            [tweetId, ...fresh],
          );
        }
        const after = new Map((await rowsOn(tx, mediaIds)).map((r) => [r.id, r]));
        return { kind: "attached", rows: mediaIds.map((id) => after.get(id)!) } as const;
      });
    },

    async sweepCandidates(shard, graceMs, limit) {
      // A periodic scan, not traffic: it leaves the router's probes at their idle pace.
      const rows = await router.primary(shard, { background: true }).query<{ id: string; sha256: string; thumb_sha256: string | null }>(
        `SELECT id, sha256, thumb_sha256 FROM chirp.media
          WHERE tweet_id IS NULL AND create_time < NOW(6) - INTERVAL ? MICROSECOND
          ORDER BY create_time LIMIT ${Math.trunc(limit)}`,
        [graceMs * 1000],
      );
      return rows.map((r) => ({ id: BigInt(r.id), sha256: r.sha256, thumbSha256: r.thumb_sha256 }));
    },

    async deleteUnattached(shard, mediaId, graceMs) {
      const res = await router
        .primary(shard)
        .execute("DELETE FROM chirp.media WHERE id = ? AND tweet_id IS NULL AND create_time < NOW(6) - INTERVAL ? MICROSECOND", [mediaId, graceMs * 1000]);
      return res.affectedRows > 0;
    },

    async ownerMedia(ownerId, limit) {
      const rows = await router
        .primaryForUser(ownerId)
        .query<{ id: string; sha256: string; thumb_sha256: string | null }>(
          `SELECT id, sha256, thumb_sha256 FROM chirp.media WHERE owner_id = ? ORDER BY id LIMIT ${Math.trunc(limit)}`,
          [ownerId],
        );
      return rows.map((r) => ({ id: BigInt(r.id), sha256: r.sha256, thumbSha256: r.thumb_sha256 }));
    },

    async deleteOwned(ownerId, mediaId) {
      await router.primaryForUser(ownerId).execute("DELETE FROM chirp.media WHERE id = ? AND owner_id = ?", [mediaId, ownerId]);
    },

    async blobReferenced(sha256) {
      const found = await Promise.all(
        router
          .shards()
          .map((s) =>
            router.primary(s).query("SELECT 1 AS one FROM chirp.media WHERE sha256 = ? UNION ALL SELECT 1 FROM chirp.media WHERE thumb_sha256 = ? LIMIT 1", [sha256, sha256]),
          ),
      );
      return found.some((rows) => rows.length > 0);
    },
  };
}
