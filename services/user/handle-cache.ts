// The Redis cache of handle -> user id, read by BatchGetUsers (every
// PostTweet's mentions) and GetUser by handle, so that a known handle costs
// no SQL. The user service alone claims and frees handles, so it alone
// writes this cache; nobody else reads it (they ask BatchGetUsers).
//
// Positive entries only: a handle nobody holds is not cached, so a sign-up
// needs nothing to become visible but its own claim. The steps are the
// profile cache's (lib/user-cache.ts, decision 12), with lib/leased-cache.ts:
//
//   read        one MGET of every handle of the call; for the misses only, a
//               fill lease each, set BEFORE the reader reads the claims.
//   fill        the claim the reader read FROM THE PRIMARY goes in only if
//               its lease is still there (the lease is used up), and only for
//               a user whose profile the same call found: a claim without a
//               user row (a sign-up in flight, or one that died) may yet be
//               released or taken over without passing through here.
//   invalidate  after a handle changes owner, before the call that did it
//               returns: DeleteAccount once it has released the claim, and
//               SignUp once it holds the claim (fresh or taken over, before
//               its user row is written). The call does not return OK unless
//               the entry and its lease are gone.
//
// Why the fill reads the primary: a replica may still show a claim that was
// released and claimed again by someone else (DeleteAccount, then a new
// SignUp), so a replica read after the invalidation could put the old owner
// back. A primary read that starts after the lease was set, and so after any
// invalidation that did not take that lease away, sees every claim committed
// before that invalidation. Hence, once a handle's new owner's SignUp (or the
// old owner's DeleteAccount) has returned, every read resolves it as the
// claims on the primaries do. An invalidation lost to a crash lasts until
// the TTL, or until the handle's next sign-up, which clears it anyway.
import type { Redis } from "ioredis";
import { LEASED_FILL_LUA, leasedCacheCounters, readWithLeases, writeAfterCommit, type LeasedCacheOptions, type LeasedMiss, type LeasedRead } from "../../lib/leased-cache.js";
import type { Logger } from "../../lib/logger.js";
import { countResults, type Metrics } from "../../lib/metrics.js";
import { lowerAscii } from "../../lib/shard/vindex.js";
import { defineScript } from "../../lib/redis-scripts.js";

/** A handle's read: its owner's id, or a miss with the lease to fill it (undefined when none may be filled). */
export type HandleCacheRead = { readonly kind: "hit"; readonly userId: bigint } | LeasedMiss;

export interface HandleCache {
  /** Keyed by the lower-cased handle (each once). Redis away: every handle a miss without a lease. */
  read(handles: readonly string[]): Promise<Map<string, HandleCacheRead>>;
  /** Best effort: a refused or failed fill changes nothing. Each claim must come from the primary, for a user that exists. */
  fill(fills: ReadonlyArray<{ readonly handle: string; readonly lease: string; readonly userId: bigint }>): Promise<void>;
  /** After a handle changed owner. Throws Unavailable when the cache could not be cleared. */
  invalidate(handles: readonly string[]): Promise<void>;
}

/** A leased cache's options; `leaseMs` defaults to 5 s (a fill later than that is refused, which is safe), `prefix` to "chirp:handle:". */
export type HandleCacheOptions = LeasedCacheOptions;

interface Scripts {
  chirpHandleFill(entry: string, lease: string, token: string, userId: string, ttlMs: number): Promise<number>;
}

type Replies = Array<[Error | null, unknown]> | null;

const USER_ID = /^[1-9][0-9]{0,19}$/;

export function createHandleCache(opts: HandleCacheOptions): HandleCache {
  const { redis, ttlMs, log } = opts;
  const leaseMs = opts.leaseMs ?? 5000;
  const prefix = opts.prefix ?? "chirp:handle:";
  const attempts = opts.attempts ?? 3;
  const retryMs = opts.retryMs ?? 25;
  // A hash tag keeps an entry and its lease in one Redis Cluster slot.
  const entryKey = (handle: string): string => `${prefix}{${handle}}`;
  const leaseKey = (handle: string): string => `${prefix}{${handle}}:lease`;
  defineScript(redis, "chirpHandleFill", { numberOfKeys: 2, lua: LEASED_FILL_LUA });
  const m = opts.metrics === undefined ? undefined : handleCacheMetrics(opts.metrics);
  const pipeline = (): Scripts & { exec(): Promise<Replies> } => redis.pipeline() as unknown as Scripts & { exec(): Promise<Replies> };
  const unique = (handles: readonly string[]): string[] => [...new Set(handles.map(lowerAscii))];

  return {
    async read(handles) {
      const keys = unique(handles);
      const out = new Map<string, HandleCacheRead>();
      let reads: LeasedRead[];
      try {
        reads = await readWithLeases(redis, keys.map((h) => ({ entry: entryKey(h), lease: leaseKey(h) })), leaseMs);
      } catch (err) {
        log.debug({ err: (err as Error).message }, "handle cache read failed; reading the database");
        m?.reads.inc({ result: "error" }, keys.length);
        for (const h of keys) out.set(h, { kind: "miss", lease: undefined });
        return out;
      }
      const results: string[] = [];
      keys.forEach((h, i) => {
        const read = reads[i]!;
        if (read.value === undefined) {
          results.push("miss");
          out.set(h, { kind: "miss", lease: read.lease });
          return;
        }
        const text = read.value.toString("latin1");
        if (!USER_ID.test(text)) {
          // Not what fill writes: read the claim, and fill nothing over it.
          results.push("error");
          out.set(h, { kind: "miss", lease: undefined });
          return;
        }
        results.push("hit");
        out.set(h, { kind: "hit", userId: BigInt(text) });
      });
      countResults(m?.reads, "result", results);
      return out;
    },

    async fill(fills) {
      if (fills.length === 0) return;
      try {
        const p = pipeline();
        for (const { handle, lease, userId } of fills) {
          const h = lowerAscii(handle);
          void p.chirpHandleFill(entryKey(h), leaseKey(h), lease, String(userId), ttlMs);
        }
        const replies = await p.exec();
        for (const [err, stored] of replies ?? []) m?.fills.inc({ result: err !== null ? "error" : stored === 1 ? "stored" : "refused" });
      } catch (err) {
        m?.fills.inc({ result: "error" }, fills.length);
        log.debug({ err: (err as Error).message }, "handle cache fill failed");
      }
    },

    async invalidate(handles) {
      const keys = unique(handles);
      if (keys.length === 0) return;
      await writeAfterCommit({ attempts, retryMs }, () => redis.del(...keys.flatMap((h) => [entryKey(h), leaseKey(h)])), m?.invalidations, (err) =>
        log.warn({ err: (err as Error | undefined)?.message }, "handle cache not cleared after a handle changed owner"),
      );
    },
  };
}

// One cache per process (the user service's context makes it), so one set of counters per registry.
function handleCacheMetrics(metrics: Metrics) {
  return leasedCacheCounters(metrics, "chirp_user_handle_cache", {
    reads: "Handle -> user id cache lookups by result (hit; miss: the claim read from MySQL; error: Redis did not answer, or a value this code did not write).",
    fills: "Handle cache fills after a miss by result (stored, refused: lease gone, error).",
    invalidations: "Handle cache clears after a handle changed owner (sign-up, account deletion) by result (ok, failed: the call answered Unavailable).",
  });
}
