import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";

// Follow times are DATETIME(6), UTC. mysql2 would hand them over as JS Dates,
// which keep milliseconds only; a keyset cursor built from a rounded time
// would skip or repeat rows that differ in the microseconds. So the store
// reads them as text (DATE_FORMAT with DB_TIME_FORMAT) and they travel as
// integer microseconds since the Unix epoch.

/** MySQL/MariaDB DATE_FORMAT pattern of the text form: `2026-03-01 12:00:00.123456`. */
export const DB_TIME_FORMAT = "%Y-%m-%d %H:%i:%s.%f";

const DB_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})$/;

/** Microseconds since the epoch of a DB_TIME_FORMAT text (UTC). */
export function microsFromDbTime(text: string): bigint {
  const m = DB_TIME.exec(text);
  if (m === null) throw new RangeError(`not a DATETIME(6) text: ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s, us] = m.map(Number) as [number, number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  return BigInt(ms) * 1000n + BigInt(us);
}

/** The DB_TIME_FORMAT text of `micros` (UTC), for binding as a DATETIME(6) parameter. */
export function dbTimeFromMicros(micros: bigint): string {
  const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const us = micros - ms * 1000n;
  const iso = new Date(Number(ms)).toISOString(); // 2026-03-01T12:00:00.123Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${us.toString().padStart(3, "0")}`;
}

export function timestampFromMicros(micros: bigint): Timestamp {
  const seconds = micros / 1_000_000n - (micros % 1_000_000n < 0n ? 1n : 0n);
  return create(TimestampSchema, { seconds, nanos: Number(micros - seconds * 1_000_000n) * 1000 });
}

export function microsFromTimestamp(ts: Timestamp | undefined): bigint {
  if (ts === undefined) return 0n;
  return ts.seconds * 1_000_000n + BigInt(Math.floor(ts.nanos / 1000));
}
