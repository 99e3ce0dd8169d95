// All SQL of the user service. Rows out, never proto messages.
//
// Where rows live (migrations 0001, 0005; shard-config/README.md):
//   users         shard of hash(id)
//   user_handles  shard of binary_md5(lower-cased handle)
//   user_emails   shard of binary_md5(lower-cased email)
// The two lookup rows are claims made before the user row exists; see
// docs/decisions/0007-claims-first-sign-up.md, for the protocol that keeps
// them consistent without a cross-shard transaction.
//
// One member at a time: no method here holds a connection (or a transaction)
// on one MySQL member while it asks another for one. Pools are per member and
// small; a request holding member A while it waits for member B, with another
// holding B and waiting for A, starves both pools until the acquire timeout.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Announce } from "../../lib/events/outbox.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import type { Queryable, ShardRouter } from "../../lib/shard/router.js";
import { binaryMd5Vindex, lowerAscii } from "../../lib/shard/vindex.js";
import { PROFILE_COLUMNS, parseProfile, type ProfileRow, type RawProfile } from "../../lib/user-profile.js";

/** A users row, parsed. Plain data: presentation is present.ts's job. */
export interface UserRow extends ProfileRow {
  readonly email: string;
}

export interface CredentialRow extends UserRow {
  readonly passwordHash: string;
}

/** A lookup row: a handle or an email, lower-cased, claimed for a user id. */
export type ClaimKind = "handle" | "email";
export interface ClaimKey {
  readonly kind: ClaimKind;
  /** The lower-cased handle or email (claimKey() makes it). */
  readonly key: string;
}

export interface Claim {
  /** 0 when the claim vanished twice while it was being read (claim()). */
  readonly userId: bigint;
  /** How long ago it was made (or taken over), by the shard's clock. */
  readonly ageMs: number;
}

export interface NewUser {
  readonly id: bigint;
  readonly handle: string;
  readonly displayName: string;
  readonly email: string;
  readonly passwordHash: string;
  /** YYYY-MM-DD, or undefined. */
  readonly birthDate: string | undefined;
}

/**
 * createUser failed before its COMMIT was sent: the user row certainly does
 * not exist (the transaction rolled back, or never began). `cause` is the
 * failure. Any other error from createUser leaves the outcome unknown.
 */
export class UserNotWrittenError extends Error {
  override readonly name = "UserNotWrittenError";
  constructor(override readonly cause: unknown) {
    super("user row not written", { cause });
  }
}

export type ReadMode = "reader" | "primary";

const USER_COLUMNS = `${PROFILE_COLUMNS}, email`;

const TABLES: Readonly<Record<ClaimKind, { table: string; column: string }>> = {
  handle: { table: "chirp.user_handles", column: "handle_lower" },
  email: { table: "chirp.user_emails", column: "email_lower" },
};

/** The lookup key of a handle or an email: ASCII letters lower-cased (never locale-dependent). */
export function claimKey(kind: ClaimKind, value: string): ClaimKey {
  return { kind, key: lowerAscii(value) };
}

export interface UserStore {
  /** Inserts the claim; when the key is taken, the existing claim instead. */
  claim(c: ClaimKey, userId: bigint): Promise<"claimed" | Claim>;
  /**
   * Takes over a claim of `staleOwner` for `newOwner`, in three steps, each on
   * one member with nothing held across them: the claim is read and must
   * belong to `staleOwner` and be at least `graceMs` old (by the claim
   * shard's clock); then `staleOwner` must have no user row (its shard's
   * primary); then one conditional UPDATE moves the claim, only if it still
   * belongs to `staleOwner` and is still that old. False if any step fails.
   * Sound because of the sign-up's lease: a user row is committed long before
   * its claims are a grace old, so once the claim has been seen that old, the
   * user row either is visible already or never will be.
   */
  takeOver(c: ClaimKey, staleOwner: bigint, newOwner: bigint, graceMs: number): Promise<boolean>;
  /** Deletes the claim if it is still `userId`'s. */
  release(c: ClaimKey, userId: bigint): Promise<void>;
  /** The claim as it stands on its shard's primary (no lock), or undefined. */
  readClaim(c: ClaimKey): Promise<Claim | undefined>;
  /**
   * Writes the user row and its event (`announce`: UserCreated) in one
   * transaction on the user's shard, and nothing else: no other member is
   * asked while it is open. `beforeCommit` runs last inside the transaction
   * and may throw to refuse the COMMIT (the sign-up's lease). A failure
   * before the COMMIT was sent is a UserNotWrittenError around the cause.
   */
  createUser(user: NewUser, beforeCommit: () => void, announce: Announce<UserRow>): Promise<UserRow>;
  userExists(userId: bigint): Promise<boolean>;
  user(userId: bigint, mode: ReadMode): Promise<UserRow | undefined>;
  /** From the primary: log-in must see a sign-up that has just returned. */
  credentials(userId: bigint): Promise<CredentialRow | undefined>;
  userIdByHandle(handle: string, mode: ReadMode): Promise<bigint | undefined>;
  /**
   * The claims of `handles` (any case), one statement per handle shard in
   * parallel. "reader": the shard's reader, then its primary for handles the
   * reader lacks (signed up within the lag bound); "primary": the primaries
   * only (what a handle cache fill needs: every claim committed before the
   * read began, none since released). Lower-cased handle -> id. A claim may
   * name a user whose row is not (or no longer, or not yet) there.
   */
  userIdsByHandles(handles: readonly string[], mode?: ReadMode): Promise<Map<string, bigint>>;
  /** Sets last_login_time (and a re-hashed password when given). */
  recordLogin(userId: bigint, newPasswordHash: string | undefined): Promise<void>;
  /**
   * Changes the fields given, in one transaction with its event (`announce`,
   * with the changed row: ProfileUpdated), only when something changed.
   * Undefined when there is no such user.
   */
  updateProfile(
    userId: bigint,
    change: { readonly displayName?: string | undefined; readonly bio?: string | undefined },
    announce: Announce<UserRow>,
  ): Promise<UserRow | undefined>;
  /**
   * Deletes the user row and writes its event (`announce`: UserDeleted) in one
   * transaction on the user's shard. The row as it was (its handle and email
   * name the claims to give back), or undefined when there is no such user.
   */
  deleteUser(userId: bigint, announce: Announce<UserRow>): Promise<UserRow | undefined>;
  /**
   * Rows of the users that exist among `ids`, one read per shard in parallel,
   * in any order. "reader": a replica within the lag bound, then the primary
   * for the ids it lacks (rows written within the bound); "primary": the
   * primaries only (what a cache fill needs: a row read after every change
   * that committed).
   */
  usersByIds(ids: readonly bigint[], mode?: ReadMode): Promise<UserRow[]>;
}

interface RawUser extends RawProfile {
  email: string;
}

function parseUser(r: RawUser): UserRow {
  return { ...parseProfile(r), email: r.email };
}

export function createUserStore(router: ShardRouter): UserStore {
  // The lookup tables are placed by binary_md5 of their key. The router knows
  // handles (shardForHandle); emails go through the same ring by keyspace id.
  const claimShard = (c: ClaimKey): ShardInfo => {
    if (c.kind === "handle") return router.shardForHandle(c.key);
    return router.shardForKeyspaceId(binaryMd5Vindex(c.key));
  };

  const readClaim = async (db: Queryable, c: ClaimKey): Promise<Claim | undefined> => {
    const { table, column } = TABLES[c.kind];
    const rows = await db.query<{ user_id: string; age_ms: string | number }>(
      `SELECT user_id, TIMESTAMPDIFF(MICROSECOND, create_time, NOW(6)) DIV 1000 AS age_ms FROM ${table} WHERE ${column} = ?`,
      [c.key],
    );
    const row = rows[0];
    return row === undefined ? undefined : { userId: BigInt(row.user_id), ageMs: Number(row.age_ms) };
  };

  const userExists = async (userId: bigint): Promise<boolean> =>
    (await router.primaryForUser(userId).query("SELECT 1 AS one FROM chirp.users WHERE id = ?", [userId])).length > 0;

  /** The user's row by id, parsed; FOR UPDATE when `lock` is given. */
  const userOn = async (db: Queryable, userId: bigint, lock = ""): Promise<UserRow | undefined> => {
    const row = (await db.query<RawUser>(`SELECT ${USER_COLUMNS} FROM chirp.users WHERE id = ?${lock}`, [userId]))[0];
    return row === undefined ? undefined : parseUser(row);
  };

  const user = async (userId: bigint, mode: ReadMode): Promise<UserRow | undefined> =>
    userOn(mode === "primary" ? router.primaryForUser(userId) : router.readerForUser(userId), userId);

  const usersOn = async (db: Queryable, idsOnShard: readonly bigint[]): Promise<UserRow[]> => {
    if (idsOnShard.length === 0) return [];
    const marks = idsOnShard.map(() => "?").join(", ");
    return (await db.query<RawUser>(`SELECT ${USER_COLUMNS} FROM chirp.users WHERE id IN (${marks})`, idsOnShard)).map(parseUser);
  };

  return {
    async claim(c, userId) {
      const { table, column } = TABLES[c.kind];
      const db = router.primary(claimShard(c));
      // Twice at most: a claim can vanish between our insert and our read
      // (a failed sign-up releasing it); after that, it counts as fresh.
      for (let attempt = 0; ; attempt++) {
        try {
          await db.execute(`INSERT INTO ${table} (${column}, user_id) VALUES (?, ?)`, [c.key, userId]);
          return "claimed";
        } catch (err) {
          if (!(err instanceof ConnectError) || err.code !== Code.AlreadyExists) throw err;
        }
        const existing = await readClaim(db, c);
        if (existing !== undefined) return existing;
        if (attempt > 0) return { userId: 0n, ageMs: 0 };
      }
    },

    async takeOver(c, staleOwner, newOwner, graceMs) {
      const { table, column } = TABLES[c.kind];
      const db = router.primary(claimShard(c));
      // 1. Seen at least a grace old: a sign-up of staleOwner that commits its
      //    user row at all has done so by now (its lease ended long before).
      const current = await readClaim(db, c);
      if (current === undefined || current.userId !== staleOwner || current.ageMs < graceMs) return false;
      // 2. So a user row that is not visible now never will be. Another
      //    member, asked with nothing held on the claim's.
      if (await userExists(staleOwner)) return false;
      // 3. Still staleOwner's and still old: the claim seen in 1 (a new claim
      //    by the same id would be young). The first takeover to get here wins.
      const moved = await db.execute(
        `UPDATE ${table} SET user_id = ?, create_time = NOW(6)
         WHERE ${column} = ? AND user_id = ? AND create_time <= NOW(6) - INTERVAL ? MICROSECOND`,
        [newOwner, c.key, staleOwner, graceMs * 1000],
      );
      return moved.affectedRows === 1;
    },

    async release(c, userId) {
      const { table, column } = TABLES[c.kind];
      await router.primary(claimShard(c)).execute(`DELETE FROM ${table} WHERE ${column} = ? AND user_id = ?`, [c.key, userId]);
    },

    readClaim: (c) => readClaim(router.primary(claimShard(c)), c),

    async createUser(u, beforeCommit, announce) {
      // Set once fn has run to its end, i.e. when the router is about to send
      // COMMIT. Until then a failure means the transaction rolled back (or a
      // dropped connection rolls it back): no user row.
      let commitSent = false;
      try {
        return await router.transaction(router.shardForUser(u.id), async (tx) => {
          await tx.execute(
            "INSERT INTO chirp.users (id, handle, display_name, email, password_hash, birth_date) VALUES (?, ?, ?, ?, ?, ?)",
            [u.id, u.handle, u.displayName, u.email, u.passwordHash, u.birthDate ?? null],
          );
          const row = await userOn(tx, u.id);
          if (row === undefined) throw new Error("inserted user row not found");
          await announce(tx, row);
          beforeCommit();
          commitSent = true;
          return row;
        });
      } catch (err) {
        throw commitSent ? err : new UserNotWrittenError(err);
      }
    },

    userExists,
    user,

    async credentials(userId) {
      const [row] = await router
        .primaryForUser(userId)
        .query<RawUser & { password_hash: string }>(`SELECT ${USER_COLUMNS}, password_hash FROM chirp.users WHERE id = ?`, [userId]);
      return row === undefined ? undefined : { ...parseUser(row), passwordHash: row.password_hash };
    },

    async userIdByHandle(handle, mode) {
      const key = lowerAscii(handle);
      const db = mode === "primary" ? router.primaryForHandle(key) : router.readerForHandle(key);
      const rows = await db.query<{ user_id: string }>("SELECT user_id FROM chirp.user_handles WHERE handle_lower = ?", [key]);
      return rows[0] === undefined ? undefined : BigInt(rows[0].user_id);
    },

    async userIdsByHandles(handles, mode = "reader") {
      const keys = [...new Set(handles.map(lowerAscii))];
      const found = new Map<string, bigint>();
      const read = async (db: Queryable, onShard: readonly string[]): Promise<void> => {
        if (onShard.length === 0) return;
        const rows = await db.query<{ handle_lower: string; user_id: string }>(
          `SELECT handle_lower, user_id FROM chirp.user_handles WHERE handle_lower IN (${onShard.map(() => "?").join(", ")})`,
          onShard,
        );
        for (const r of rows) found.set(r.handle_lower, BigInt(r.user_id));
      };
      await router.scatter(
        keys,
        (key) => router.shardForHandle(key),
        async (shard, onShard) => {
          if (mode === "reader") await read(router.reader(shard), onShard);
          await read(router.primary(shard), onShard.filter((k) => !found.has(k)));
          return [];
        },
      );
      return found;
    },

    async recordLogin(userId, newPasswordHash) {
      const db = router.primaryForUser(userId);
      if (newPasswordHash === undefined) {
        await db.execute("UPDATE chirp.users SET last_login_time = NOW(6) WHERE id = ?", [userId]);
      } else {
        await db.execute("UPDATE chirp.users SET last_login_time = NOW(6), password_hash = ? WHERE id = ?", [newPasswordHash, userId]);
      }
    },

    async updateProfile(userId, change, announce) {
      return router.transaction(router.shardForUser(userId), async (tx) => {
        const before = await userOn(tx, userId, " FOR UPDATE");
        if (before === undefined) return undefined;
        const displayName = change.displayName ?? before.displayName;
        const bio = change.bio ?? before.bio;
        if (displayName === before.displayName && bio === before.bio) return before;
        await tx.execute("UPDATE chirp.users SET display_name = ?, bio = ? WHERE id = ?", [displayName, bio, userId]);
        const after: UserRow = { ...before, displayName, bio };
        await announce(tx, after);
        return after;
      });
    },

    async deleteUser(userId, announce) {
      return router.transaction(router.shardForUser(userId), async (tx) => {
        const row = await userOn(tx, userId, " FOR UPDATE");
        if (row === undefined) return undefined;
        await tx.execute("DELETE FROM chirp.users WHERE id = ?", [userId]);
        await announce(tx, row);
        return row;
      });
    },

    async usersByIds(wanted, mode = "reader") {
      return router.scatter(
        wanted,
        (id) => router.shardForUser(id),
        async (shard, onShard) => {
          if (mode === "primary") return usersOn(router.primary(shard), onShard);
          const found = await usersOn(router.reader(shard), onShard);
          if (found.length === onShard.length) return found;
          const seen = new Set(found.map((r) => r.id));
          const missing = onShard.filter((id) => !seen.has(id));
          return [...found, ...(await usersOn(router.primary(shard), missing))];
        },
      );
    },
  };
}
