import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { parseBirthDate } from "./birth-date.js";

const now = new Date("2026-11-21T12:00:00Z");

function code(value: string): Code | undefined {
  try {
    parseBirthDate(value, now);
    return undefined;
  } catch (err) {
    return (err as ConnectError).code;
  }
}

describe("parseBirthDate", () => {
  it("accepts real dates up to today in the earliest time zone; empty means not given", () => {
    expect(parseBirthDate("", now)).toBeUndefined();
    expect(parseBirthDate("2000-02-29", now)).toBe("2000-02-29");
    expect(parseBirthDate("1900-01-01", now)).toBe("1900-01-01");
    expect(parseBirthDate("2026-11-22", now)).toBe("2026-11-22");
  });

  it.each(["2001-02-29", "1999-13-01", "1999-00-10", "1999-04-31", "1899-12-31", "2026-11-23", "99-1-1", "1999-1-01"])(
    "refuses %s",
    (value) => {
      expect(code(value)).toBe(Code.InvalidArgument);
    },
  );
});
