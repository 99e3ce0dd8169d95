import { describe, expect, it } from "vitest";
import { decodeKey, encodeKey } from "./state.js";

describe("copy keys in the state", () => {
  it("survive JSON, bytes included", () => {
    const key = [Buffer.from("00ff10", "hex"), "18446744073709551615", "handle", null];
    const back = decodeKey(JSON.parse(JSON.stringify(encodeKey(key))) as unknown[]);
    expect(back).toEqual(key);
    expect(Buffer.isBuffer(back[0])).toBe(true);
  });
});
