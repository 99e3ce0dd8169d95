// A lease on one key of a NATS KV bucket: at most one live holder at a time,
// handed over when the holder stops renewing. nats-server 2.9 has no per-key
// TTL, so the bucket's max age is the lease's lifetime: every renewal is a new
// revision (a compare-and-set `update` on the revision we wrote), and a key
// whose holder stopped renewing is removed by the server after max age. A
// claimant `create`s the key, which succeeds only when it is absent or deleted.
//
// The holder treats the lease as its own only until `renewal sent + ttl -
// renewMs`, so it stops acting before the server can expire the key and let
// someone else in (elapsed time on two clocks, not their readings, is
// compared). Work done under a lease must still be safe to repeat: a holder
// paused by GC or a slow network can act a moment after losing it.
import { hostname } from "node:os";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../logger.js";

export interface Lease {
  readonly key: string;
  /** True while this process holds the lease and its last renewal is recent enough to act on. */
  held(): boolean;
  /** Resolves when the lease is held (at once if it is); rejects with the signal's reason. */
  whenHeld(signal: AbortSignal): Promise<void>;
  /** Stops claiming and renewing; deletes the key if it is still ours, so a successor need not wait for expiry. */
  release(): Promise<void>;
  /** Stops without deleting the key (tests: a crashed holder). */
  abandon(): void;
}

/** A lease bucket and its max age (the lease lifetime), as the server has it. */
export interface LeaseBucket {
  readonly kv: KV;
  readonly ttlMs: number;
}

/**
 * Opens the bucket, creating it with `ttlMs` as its max age if it is missing.
 * An existing bucket keeps its own max age, which is what is returned: every
 * holder must time its lease by the server's expiry, not its own config.
 */
export async function openLeaseBucket(nc: NatsConnection, bucket: string, ttlMs: number): Promise<LeaseBucket> {
  const kv = await new Kvm(nc).create(bucket, { history: 1, ttl: ttlMs });
  const status = await kv.status();
  return { kv, ttlMs: status.ttl > 0 ? status.ttl : ttlMs };
}

export interface LeaseOptions {
  /** The bucket on the current connection; called before every request, so it may change after a reconnect. */
  readonly bucket: (signal: AbortSignal) => Promise<LeaseBucket>;
  readonly key: string;
  /** Who holds it, for operators reading the bucket. */
  readonly owner: string;
  /** Renewal period; capped at a third of the bucket's max age. */
  readonly renewMs: number;
  /** How often to try to take the lease while someone else holds it. */
  readonly claimMs: number;
  readonly log: Logger;
  readonly onChange?: (held: boolean) => void;
}

export function createLease(opts: LeaseOptions): Lease {
  const stop = new AbortController();
  const value = JSON.stringify({ owner: opts.owner, host: hostname(), pid: process.pid });
  let revision = 0; // ours, as last written; 0 when we hold nothing
  let validUntil = 0; // performance.now() past which we must not act
  let wasHeld = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let waiters: (() => void)[] = [];
  let ttlMs = Number.POSITIVE_INFINITY; // known once the bucket is open

  const renewMs = (): number => Math.min(opts.renewMs, ttlMs / 3);

  const held = (): boolean => !stop.signal.aborted && revision > 0 && performance.now() < validUntil;

  const notify = (): void => {
    const now = held();
    if (now !== wasHeld) {
      wasHeld = now;
      opts.log.info({ key: opts.key, held: now }, now ? "lease taken" : "lease lost");
      opts.onChange?.(now);
    }
    if (now) {
      const woken = waiters;
      waiters = [];
      for (const w of woken) w();
    }
  };

  const tick = async (): Promise<void> => {
    let kv: KV;
    try {
      ({ kv, ttlMs } = await opts.bucket(stop.signal));
    } catch {
      return; // the bus is away: validity runs out on its own
    }
    if (stop.signal.aborted) return;
    const sentAt = performance.now();
    try {
      revision = revision > 0 ? await kv.update(opts.key, value, revision) : await kv.create(opts.key, value);
      // Stop acting a renewal period before the server may expire the key.
      validUntil = sentAt + ttlMs - renewMs();
    } catch (err) {
      if (isWrongRevision(err)) {
        // Expired under us and maybe taken; or held by someone else when claiming.
        if (revision > 0) opts.log.warn({ key: opts.key }, "lease renewal refused: it expired or another relay took it");
        revision = 0;
      } else {
        opts.log.debug({ err, key: opts.key }, "lease request failed; retrying");
      }
    }
  };

  const schedule = (): void => {
    if (stop.signal.aborted) return;
    notify();
    // Renew on a steady cadence while we hold it; otherwise try to claim it.
    timer = setTimeout(
      () => {
        running = tick().finally(() => {
          running = undefined;
          schedule();
        });
      },
      revision > 0 ? renewMs() : opts.claimMs,
    );
  };

  running = tick().finally(() => {
    running = undefined;
    schedule();
  });

  const halt = (): void => {
    stop.abort();
    clearTimeout(timer);
    const woken = waiters;
    waiters = [];
    for (const w of woken) w();
    if (wasHeld) {
      wasHeld = false;
      opts.onChange?.(false);
    }
  };

  return {
    key: opts.key,
    held,
    whenHeld: (signal) => {
      if (signal.aborted) return Promise.reject(signal.reason);
      if (held()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          waiters = waiters.filter((w) => w !== wake);
          reject(signal.reason);
        };
        const wake = (): void => {
          signal.removeEventListener("abort", onAbort);
          if (stop.signal.aborted) reject(new Error("lease released"));
          else resolve();
        };
        waiters.push(wake);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    },
    release: async () => {
      if (stop.signal.aborted) return;
      halt();
      await running;
      const rev = revision;
      revision = 0;
      validUntil = 0;
      if (rev === 0) return;
      try {
        const { kv } = await opts.bucket(AbortSignal.timeout(2000));
        // Only if still ours: a successor's revision is left alone.
        await kv.delete(opts.key, { previousSeq: rev });
        opts.log.info({ key: opts.key }, "lease released");
      } catch (err) {
        opts.log.debug({ err, key: opts.key }, "lease not deleted; it expires on its own");
      }
    },
    abandon: () => {
      halt();
      revision = 0;
      validUntil = 0;
    },
  };
}

function isWrongRevision(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
