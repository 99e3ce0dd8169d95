import { describe, expect, it } from "vitest";
import {
  AssertionError,
  createAssertionSigner,
  createAssertionVerifier,
  formatServiceKeys,
  generateMeshSecret,
  parseMeshSecrets,
  parseServiceKeys,
  serviceKey,
} from "./assertion.js";

const METHOD = "chirp.tweet.v1.TweetService/PostTweet";
const reason = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof AssertionError) return err.reason;
    throw err;
  }
  return undefined;
};

describe("caller assertions", () => {
  const [secret] = parseMeshSecrets(generateMeshSecret());
  const signer = createAssertionSigner(secret!);
  const tweet = createAssertionVerifier([serviceKey(secret!, "tweet")]);
  const now = 1_800_000_000_000;

  it("verifies at the service whose key it holds, bound to the request id, until it expires", () => {
    const a = signer.sign("42", "7", METHOD, "req-1", 30_000, now);
    expect(a.length).toBeLessThan(300);
    expect(tweet.verify(a, "tweet", "req-1", false, now + 1000)).toEqual({ userId: "42", sessionId: "7", method: METHOD, expMs: now + 30_000, requestId: "req-1" });
    // Cached: the same answer again, and the binding still checked.
    expect(tweet.verify(a, "tweet", "req-1", false, now + 2000).userId).toBe("42");
    expect(reason(() => tweet.verify(a, "tweet", "req-2", false, now))).toBe("wrong_request");
    expect(reason(() => tweet.verify(a, "tweet", null, false, now))).toBe("wrong_request");
    expect(reason(() => tweet.verify(a, "tweet", "req-1", false, now + 30_000))).toBe("expired");
  });

  it("refuses another request id before anything is cached, and a tampered or foreign assertion", () => {
    const fresh = createAssertionVerifier([serviceKey(secret!, "tweet")]);
    const a = signer.sign("42", "7", METHOD, "req-1", 30_000, now);
    expect(reason(() => fresh.verify(a, "tweet", "req-2", false, now))).toBe("bad_mac");
    expect(reason(() => fresh.verify(a.replace(";42;", ";43;"), "tweet", "req-1", false, now))).toBe("bad_mac");
    expect(reason(() => fresh.verify(a.replace("PostTweet", "LikeTweet"), "tweet", "req-1", false, now))).toBe("bad_mac");
    const [other] = parseMeshSecrets(generateMeshSecret());
    const foreign = createAssertionSigner(other!).sign("42", "7", METHOD, "req-1", 30_000, now);
    expect(reason(() => fresh.verify(foreign, "tweet", "req-1", false, now))).toBe("unknown_key");
    expect(reason(() => fresh.verify("v1;42;7;1;x;y", "tweet", "req-1", false, now))).toBe("malformed");
    expect(reason(() => fresh.verify("x".repeat(600), "tweet", "req-1", false, now))).toBe("malformed");
  });

  it("gives a service no key to vouch at another: its own key verifies only its own MAC", () => {
    const a = signer.sign("42", "7", METHOD, "req-1", 30_000, now);
    // A verifier holding only the tweet key cannot check (or have made) the user service's MAC.
    expect(reason(() => tweet.verify(a, "user", "req-1", false, now))).toBe("unknown_key");
    const user = createAssertionVerifier([serviceKey(secret!, "user")]);
    expect(user.verify(a, "user", "req-1", false, now).userId).toBe("42");
    // A MAC made with the tweet service's key in the user service's slot does not verify there.
    const macs = Buffer.from(a.slice(a.lastIndexOf(";") + 1), "base64url");
    macs.copy(macs, 0, 32, 48); // user <- tweet
    const forged = `${a.slice(0, a.lastIndexOf(";"))};${macs.toString("base64url")}`;
    expect(reason(() => createAssertionVerifier([serviceKey(secret!, "user")]).verify(forged, "user", "req-1", false, now))).toBe("bad_mac");
  });

  it("lets a once-only call use its assertion once", () => {
    const v = createAssertionVerifier([serviceKey(secret!, "tweet")]);
    const a = signer.sign("42", "7", METHOD, "req-9", 30_000, now);
    v.verify(a, "tweet", "req-9", true, now);
    expect(reason(() => v.verify(a, "tweet", "req-9", true, now + 1))).toBe("replayed");
    // Hops on the caller's behalf may pass it on as often as they need.
    expect(v.verify(a, "tweet", "req-9", false, now + 2).userId).toBe("42");
  });

  it("accepts the previous secret's keys during a rotation, and carries keys as CHIRP_MESH_KEYS text", () => {
    const [old] = parseMeshSecrets(generateMeshSecret());
    const text = formatServiceKeys([secret!, old!], ["tweet"]);
    const keys = parseServiceKeys(text);
    expect(keys.map((k) => k.service)).toEqual(["tweet", "tweet"]);
    const v = createAssertionVerifier(keys);
    expect(v.verify(createAssertionSigner(old!).sign("5", "6", METHOD, "r", 1000, now), "tweet", "r", false, now).userId).toBe("5");
    expect(v.verify(signer.sign("5", "6", METHOD, "r2", 1000, now), "tweet", "r2", false, now).userId).toBe("5");
    expect(() => parseServiceKeys("nope")).toThrow();
    expect(() => parseMeshSecrets("c2hvcnQ")).toThrow(/32 bytes/);
  });

  it("knows the assertions its own process signed without a MAC", () => {
    const all = createAssertionVerifier([serviceKey(secret!, "tweet")]);
    const local = createAssertionSigner(secret!, { verifier: all, services: [] });
    const a = local.sign("42", "7", METHOD, "req-1", 30_000, now);
    expect(all.verify(a, "tweet", "req-1", false, now).userId).toBe("42");
    expect(reason(() => all.verify(a, "tweet", "req-2", false, now))).toBe("wrong_request");
  });

  it("signs the services it calls in-process with the process's own key, which no other process accepts", () => {
    const keys = [serviceKey(secret!, "tweet"), serviceKey(secret!, "timeline"), serviceKey(secret!, "media")];
    const own = createAssertionVerifier(keys);
    const local = createAssertionSigner(secret!, { verifier: own, services: ["tweet", "timeline"] });
    const a = local.sign("42", "7", METHOD, "req-1", 30_000, now);
    // Long after the process forgot it signed `a` (ten thousand newer assertions), the process's own MAC still holds.
    for (let i = 0; i < 10_000; i++) local.sign("43", "8", METHOD, `req-${i + 2}`, 30_000, now);
    expect(own.verify(a, "tweet", "req-1", false, now).userId).toBe("42");
    expect(own.verify(a, "timeline", "req-1", false, now).userId).toBe("42");
    expect(reason(() => own.verify(a, "tweet", "req-2", false, now))).toBe("wrong_request");
    // Another process with the same service keys: the in-process slots hold no MAC it can check; media's is the real one.
    const other = createAssertionVerifier(keys);
    expect(reason(() => other.verify(a, "tweet", "req-1", false, now))).toBe("bad_mac");
    expect(reason(() => other.verify(a, "timeline", "req-1", false, now))).toBe("bad_mac");
    expect(other.verify(a, "media", "req-1", false, now).userId).toBe("42");
    // A forged assertion is not accepted by the process's own key either.
    const forged = createAssertionSigner(parseMeshSecrets(generateMeshSecret())[0]!).sign("42", "7", METHOD, "req-9", 30_000, now);
    expect(reason(() => own.verify(forged, "tweet", "req-9", false, now))).toBe("unknown_key");
    const altered = a.replace(";42;", ";41;");
    expect(reason(() => own.verify(altered, "tweet", "req-1", false, now))).toBe("bad_mac");
  });
});
