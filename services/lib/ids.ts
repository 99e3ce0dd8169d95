/**
 * Snowflake ids, 63 bits, rendered as decimal strings on the wire:
 *
 *   | 41 bits: ms since 2026-01-01 | 8 bits: routing byte | 4 bits: worker | 10 bits: sequence |
 *
 * The routing byte is the first byte of the owning user's keyspace_id (Vitess
 * `hash` of the user id). A tweet id therefore says which shard holds the
 * tweet, with no lookup: shards split on byte boundaries (`-40`, `40-80`...),
 * so a one-byte prefix places any id on any topology of up to 256 shards.
 * Ids sort by creation time, which keyset pagination and timelines rely on.
 */
export const ID_EPOCH_MS = Date.UTC(2026, 0, 1);

const TIME_BITS = 41n;
const ROUTING_BITS = 8n;
const WORKER_BITS = 4n;
const SEQUENCE_BITS = 10n;

export const MAX_WORKER_ID = Number((1n << WORKER_BITS) - 1n);
const MAX_SEQUENCE = Number((1n << SEQUENCE_BITS) - 1n);
const MAX_TIME = (1n << TIME_BITS) - 1n;

export interface IdParts {
  readonly timeMs: number;
  readonly routingByte: number;
  readonly worker: number;
  readonly sequence: number;
}

export class ClockMovedBackwardsError extends Error {
  override readonly name = "ClockMovedBackwardsError";
}

export interface IdGenerator {
  /** A new id whose routing byte is `routingByte` (0-255). */
  next(routingByte: number): bigint;
}

/**
 * One generator per process; `workerId` (0-15) must differ between processes
 * of the same service, or two of them can mint the same id (the primary key
 * would then refuse the second insert rather than corrupt anything).
 */
export function createIdGenerator(workerId: number, now: () => number = Date.now): IdGenerator {
  if (!Number.isInteger(workerId) || workerId < 0 || workerId > MAX_WORKER_ID) {
    throw new RangeError(`worker id must be an integer in [0, ${MAX_WORKER_ID}]`);
  }
  let lastMs = -1;
  let sequence = 0;
  return {
    next(routingByte) {
      if (!Number.isInteger(routingByte) || routingByte < 0 || routingByte > 255) {
        throw new RangeError("routing byte must be an integer in [0, 255]");
      }
      let ms = now() - ID_EPOCH_MS;
      if (ms < lastMs) {
        // Small steps back (NTP slew) are absorbed by staying on the last
        // millisecond; a large jump is refused rather than risking duplicates.
        if (lastMs - ms > 5000) throw new ClockMovedBackwardsError(`clock moved back ${lastMs - ms} ms`);
        ms = lastMs;
      }
      if (ms === lastMs) {
        sequence++;
        if (sequence > MAX_SEQUENCE) {
          // 1024 ids in one millisecond: borrow the next one.
          ms = lastMs + 1;
          sequence = 0;
        }
      } else {
        sequence = 0;
      }
      lastMs = ms;
      if (BigInt(ms) > MAX_TIME) throw new RangeError("id time overflow");
      return (
        (BigInt(ms) << (ROUTING_BITS + WORKER_BITS + SEQUENCE_BITS)) |
        (BigInt(routingByte) << (WORKER_BITS + SEQUENCE_BITS)) |
        (BigInt(workerId) << SEQUENCE_BITS) |
        BigInt(sequence)
      );
    },
  };
}

export function parseId(id: bigint): IdParts {
  return {
    timeMs: Number(id >> (ROUTING_BITS + WORKER_BITS + SEQUENCE_BITS)) + ID_EPOCH_MS,
    routingByte: Number((id >> (WORKER_BITS + SEQUENCE_BITS)) & 0xffn),
    worker: Number((id >> SEQUENCE_BITS) & BigInt(MAX_WORKER_ID)),
    sequence: Number(id & BigInt(MAX_SEQUENCE)),
  };
}
