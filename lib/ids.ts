import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Snowflake ids, 63 bits, rendered as decimal strings on the wire:
 *
 *   | 41 bits: ms since 2026-01-01 | 10 bits: node | 12 bits: sequence |
 *
 * The node number is leased per process (node-id.ts), so no two live
 * processes mint with the same one. Ids sort by creation time, which keyset
 * pagination and timelines rely on. An id says nothing about where its row
 * lives: tweets are found through a lookup (see docs/decisions/0011-tweet-id-lookup-not-routing-bits.md).
 */
export const ID_EPOCH_MS = Date.UTC(2026, 0, 1);

const NODE_BITS = 10n;
const SEQUENCE_BITS = 12n;
const TIME_BITS = 41n;

export const MAX_NODE_ID = Number((1n << NODE_BITS) - 1n);
const MAX_SEQUENCE = Number((1n << SEQUENCE_BITS) - 1n);
const MAX_TIME = (1n << TIME_BITS) - 1n;
/** A clock step back up to this is ridden out on the last millisecond; beyond it, minting stops. */
const MAX_BACKWARD_STEP_MS = 5000;

export interface IdParts {
  readonly timeMs: number;
  readonly node: number;
  readonly sequence: number;
}

export class ClockMovedBackwardsError extends ConnectError {
  constructor(stepMs: number) {
    super(`clock moved back ${stepMs} ms; not minting ids until it catches up`, Code.Unavailable);
  }
}

export interface IdGenerator {
  next(): bigint;
  /**
   * An id of a past millisecond, for imports (ImportTweet). Its sequence
   * counts down from the top while next() counts up from 0, so this node's
   * live and backdated ids of one millisecond meet only past 2,048 each;
   * an id an earlier holder of the node number minted then is still
   * possible, so a caller claims the id (a unique key) before using it.
   */
  at(timeMs: number): bigint;
}

/**
 * Ids for one node number. A clock that steps back never yields a duplicate:
 * small steps (NTP slew, a VM pause) keep counting on the last millisecond
 * used; a large one refuses (Unavailable) until the clock passes it again.
 */
export function createIdGenerator(nodeId: number, now: () => number = Date.now): IdGenerator {
  if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > MAX_NODE_ID) {
    throw new RangeError(`node id must be an integer in [0, ${MAX_NODE_ID}]`);
  }
  let lastMs = -1;
  let sequence = 0;
  let backSequence = 0;
  return {
    next() {
      let ms = now() - ID_EPOCH_MS;
      if (ms < lastMs) {
        if (lastMs - ms > MAX_BACKWARD_STEP_MS) throw new ClockMovedBackwardsError(lastMs - ms);
        ms = lastMs;
      }
      if (ms === lastMs) {
        sequence++;
        if (sequence > MAX_SEQUENCE) {
          // 4096 ids in one millisecond: borrow the next one.
          ms = lastMs + 1;
          sequence = 0;
        }
      } else {
        sequence = 0;
      }
      lastMs = ms;
      if (BigInt(ms) > MAX_TIME) throw new RangeError("id time overflow");
      return composeId(ms, nodeId, sequence);
    },
    at(timeMs) {
      const ms = timeMs - ID_EPOCH_MS;
      if (!Number.isInteger(ms) || ms < 0 || BigInt(ms) > MAX_TIME) throw new RangeError(`no id for time ${timeMs}: before the epoch or past its range`);
      backSequence = backSequence === 0 ? MAX_SEQUENCE : backSequence - 1;
      return composeId(ms, nodeId, backSequence);
    },
  };
}

function composeId(ms: number, nodeId: number, sequence: number): bigint {
  return (BigInt(ms) << (NODE_BITS + SEQUENCE_BITS)) | (BigInt(nodeId) << SEQUENCE_BITS) | BigInt(sequence);
}

export function parseId(id: bigint): IdParts {
  return {
    timeMs: Number(id >> (NODE_BITS + SEQUENCE_BITS)) + ID_EPOCH_MS,
    node: Number((id >> SEQUENCE_BITS) & BigInt(MAX_NODE_ID)),
    sequence: Number(id & BigInt(MAX_SEQUENCE)),
  };
}

/** The smallest id minted at or after `timeMs` (for time-bounded id ranges). */
export function firstIdAt(timeMs: number): bigint {
  return BigInt(Math.max(0, timeMs - ID_EPOCH_MS)) << (NODE_BITS + SEQUENCE_BITS);
}
