import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";

// Like times are DATETIME(6), UTC. mysql2 would hand them over as JS Dates,
// which keep milliseconds only, and a keyset cursor built from a rounded time
// skips or repeats rows that differ in the microseconds. So the store reads
// them as text (DATE_FORMAT with DB_TIME_FORMAT) and they travel as integer
// microseconds since the Unix epoch.

/** DATE_FORMAT pattern of the text form, `2026-03-01 12:00:00.123456` (MariaDB and MySQL). */
export const DB_TIME_FORMAT = "%Y-%m-%d %H:%i:%s.%f";

const DB_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})$/;

export function microsFromDbTime(text: string): bigint {
  const m = DB_TIME.exec(text);
  if (m === null) throw new RangeError(`not a DATETIME(6) text: ${JSON.stringify(text)}`);
  const [y, mo, d, h, mi, s, us] = m.slice(1).map(Number) as [number, number, number, number, number, number, number];
  return BigInt(Date.UTC(y, mo - 1, d, h, mi, s)) * 1000n + BigInt(us);
}

/** The DB_TIME_FORMAT text of `micros` (UTC), to bind as a DATETIME(6) parameter. */
export function dbTimeFromMicros(micros: bigint): string {
  const ms = floorDiv(micros, 1000n);
  const iso = new Date(Number(ms)).toISOString(); // 2026-03-01T12:00:00.123Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(micros - ms * 1000n).padStart(3, "0")}`;
}

export function timestampFromMicros(micros: bigint): Timestamp {
  const seconds = floorDiv(micros, 1_000_000n);
  return create(TimestampSchema, { seconds, nanos: Number(micros - seconds * 1_000_000n) * 1000 });
}

export function microsFromTimestamp(ts: Timestamp | undefined): bigint {
  if (ts === undefined) return 0n;
  return ts.seconds * 1_000_000n + BigInt(Math.floor(ts.nanos / 1000));
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b < 0n ? q - 1n : q;
}
