import { Code, ConnectError } from "@connectrpc/connect";

/**
 * A sign-up's birth_date: "" (not given) or a real calendar date, YYYY-MM-DD,
 * from 1900 on and not after today. "Today" is taken in the earliest time
 * zone (UTC+14), so nobody's real birthday is refused as "in the future".
 * The proto checks the shape; this checks the calendar.
 */
export function parseBirthDate(value: string, now: Date = new Date()): string | undefined {
  if (value === "") return undefined;
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(value);
  if (m === null) throw invalid("birth_date: must be YYYY-MM-DD");
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) {
    throw invalid("birth_date: not a calendar date");
  }
  if (year < 1900) throw invalid("birth_date: before 1900");
  const latest = new Date(now.getTime() + 14 * 3600_000);
  if (value > latest.toISOString().slice(0, 10)) throw invalid("birth_date: in the future");
  return value;
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}
