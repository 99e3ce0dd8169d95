import { describe, expect, it } from "vitest";
import { USER_DEFAULTS } from "./config.js";
import { createPasswordHasher } from "./passwords.js";

describe("password hashing", async () => {
  const hasher = await createPasswordHasher(USER_DEFAULTS.passwordHash);

  it("stores an argon2id PHC string with the configured cost, salted per hash", async () => {
    const a = await hasher.hash("correct horse");
    const b = await hasher.hash("correct horse");
    expect(a).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain("correct horse");
  });

  it("verifies the right password and refuses a wrong one", async () => {
    const phc = await hasher.hash("correct horse");
    expect(await hasher.verify(phc, "correct horse")).toBe(true);
    expect(await hasher.verify(phc, "correct horsE")).toBe(false);
  });

  it("treats differently composed but equivalent Unicode as the same password", async () => {
    const phc = await hasher.hash("caf\u00e9 society");
    expect(await hasher.verify(phc, "cafe\u0301 society")).toBe(true);
  });

  it("answers false without a stored hash, after doing the same work", async () => {
    expect(await hasher.verify(undefined, "anything at all")).toBe(false);
  });

  it("asks for a re-hash when the parameters changed", async () => {
    const phc = await hasher.hash("correct horse");
    expect(hasher.needsRehash(phc)).toBe(false);
    const stronger = await createPasswordHasher({ ...USER_DEFAULTS.passwordHash, timeCost: 3 });
    expect(stronger.needsRehash(phc)).toBe(true);
    expect(await stronger.verify(phc, "correct horse")).toBe(true);
  });
});
