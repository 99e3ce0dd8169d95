import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";

// Event times are DATETIME(6), UTC. The store reads them as text (DATE_FORMAT
// with DB_TIME_FORMAT), since a JS Date keeps milliseconds only, and they
// travel as integer microseconds since the Unix epoch.

/** MySQL/MariaDB DATE_FORMAT pattern of the text form: `2026-03-01 12:00:00.123456`. */
export const DB_TIME_FORMAT = "%Y-%m-%d %H:%i:%s.%f";

const DB_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})$/;

export function microsFromDbTime(text: string): bigint {
  const m = DB_TIME.exec(text);
  if (m === null) throw new RangeError(`not a DATETIME(6) text: ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s, us] = m.map(Number) as [number, number, number, number, number, number, number, number];
  return BigInt(Date.UTC(y, mo - 1, d, h, mi, s)) * 1000n + BigInt(us);
}

/** The DB_TIME_FORMAT text of `micros` (UTC, clamped to 1970..9999), for a DATETIME(6) parameter. */
export function dbTimeFromMicros(micros: bigint): string {
  const clamped = micros < 0n ? 0n : micros > 253_402_300_799_999_999n ? 253_402_300_799_999_999n : micros;
  const ms = clamped / 1000n;
  const us = clamped - ms * 1000n;
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${us.toString().padStart(3, "0")}`;
}

export function timestampFromMicros(micros: bigint): Timestamp {
  const seconds = micros / 1_000_000n;
  return create(TimestampSchema, { seconds, nanos: Number(micros - seconds * 1_000_000n) * 1000 });
}

export function microsFromTimestamp(ts: Timestamp | undefined): bigint {
  if (ts === undefined) return 0n;
  return ts.seconds * 1_000_000n + BigInt(Math.floor(ts.nanos / 1000));
}
