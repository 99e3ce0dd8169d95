// The per-account limit of wrong passwords against a real redis-server.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../lib/logger.js";
import { startTestRedis, type TestRedis } from "../test/support/redis.js";
import { createAccountLimiter, type Account, type AccountLimiter, type AccountLimits, type AttemptOutcome } from "./account-limit.js";

let server: TestRedis;
let redis: Redis;
const log = createLogger("gateway", "silent");
let serial = 0;

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.redis;
});

afterAll(async () => {
  await server?.stop();
});

/** A limiter over its own key prefix: 3 wrong passwords at once, then one an hour. */
function limiter(limits: Partial<AccountLimits> = {}, exemptIps: string[] = []): AccountLimiter {
  return createAccountLimiter({
    redis,
    limits: { failures: { perSecond: 1 / 3600, burst: 3 }, knownDays: 30, ...limits },
    exemptIps,
    log,
    prefix: `test${serial++}:`,
  });
}

/** One attempt: allowed and settled with `outcome`, or the wait it was refused with. */
async function attempt(l: AccountLimiter, account: Account, ip: string, outcome: AttemptOutcome): Promise<number | "allowed"> {
  const d = await l.begin(account, ip, "req");
  if (!d.allowed) return d.retryAfterMs;
  await d.settle(outcome);
  return "allowed";
}

describe("per-account limit of wrong passwords", () => {
  it("slows a guess spread over many addresses once the account's bucket is empty", async () => {
    const l = limiter();
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await attempt(l, { handle: "alice" }, `198.51.100.${i + 1}`, "wrong"));
    expect(results.slice(0, 3)).toEqual(["allowed", "allowed", "allowed"]);
    for (const wait of results.slice(3)) {
      expect(typeof wait).toBe("number");
      // One token an hour: the wait is most of an hour.
      expect(wait as number).toBeGreaterThan(3_500_000);
      expect(wait as number).toBeLessThanOrEqual(3_600_000);
    }
    // Another account is not held back.
    expect(await attempt(l, { handle: "bob" }, "198.51.100.1", "wrong")).toBe("allowed");
  });

  it("treats an account that does not exist exactly as one that does, and handles in any case as one", async () => {
    const l = limiter();
    const run = async (handle: string): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await attempt(l, { handle: i % 2 === 0 ? handle : handle.toUpperCase() }, `203.0.113.${i + 1}`, "wrong");
        out.push(r === "allowed" ? r : `wait ${Math.round(r / 60_000)} min`);
      }
      return out;
    };
    const real = await run("alice");
    const missing = await run("nobody_here");
    expect(missing).toEqual(real);
    expect(real).toEqual(["allowed", "allowed", "allowed", "wait 60 min", "wait 60 min"]);
    // No handle is written to Redis, only hashes.
    const keys = await redis.keys("*");
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(k.toLowerCase()).not.toMatch(/alice|nobody/);
  });

  it("charges nothing for a right password or a call that checked none", async () => {
    const l = limiter();
    for (let i = 0; i < 10; i++) expect(await attempt(l, { handle: "carol" }, "192.0.2.1", i % 2 === 0 ? "right" : "neither")).toBe("allowed");
    // The three wrong ones are still all there.
    for (let i = 0; i < 3; i++) expect(await attempt(l, { handle: "carol" }, "192.0.2.2", "wrong")).toBe("allowed");
    expect(typeof (await attempt(l, { handle: "carol" }, "192.0.2.3", "wrong"))).toBe("number");
  });

  it("lets no more than the burst through at once, however many arrive together", async () => {
    const l = limiter();
    const decisions = await Promise.all(Array.from({ length: 40 }, (_, i) => l.begin({ handle: "dave" }, `10.0.${i}.1`, "req")));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(3);
    // Those three turn out right: their tokens come back, and three more may try.
    await Promise.all(decisions.map((d) => (d.allowed ? d.settle("right") : undefined)));
    const again = await Promise.all(Array.from({ length: 10 }, (_, i) => l.begin({ handle: "dave" }, `10.1.${i}.1`, "req")));
    expect(again.filter((d) => d.allowed)).toHaveLength(3);
  });

  it("keeps an address that logged in before out of an attack's lockout; a new one waits", async () => {
    const l = limiter();
    // The owner logs in from home.
    expect(await attempt(l, { handle: "erin" }, "192.0.2.10", "right")).toBe("allowed");
    // An attack from many addresses empties the account's bucket.
    for (let i = 0; i < 10; i++) await attempt(l, { handle: "erin" }, `198.51.100.${100 + i}`, "wrong");
    expect(typeof (await attempt(l, { handle: "erin" }, "198.51.100.200", "right"))).toBe("number");
    // The owner, from home, still gets in, even after a typo or two.
    expect(await attempt(l, { handle: "ERIN" }, "192.0.2.10", "wrong")).toBe("allowed");
    expect(await attempt(l, { handle: "erin" }, "192.0.2.10", "right")).toBe("allowed");
    // An IPv6 address is known by its /64.
    expect(await attempt(l, { handle: "frank" }, "2001:db8:1:2::5", "right")).toBe("allowed");
    for (let i = 0; i < 5; i++) await attempt(l, { handle: "frank" }, `198.51.100.${i + 1}`, "wrong");
    expect(await attempt(l, { handle: "frank" }, "2001:db8:1:2:aaaa::9", "right")).toBe("allowed");
    // The known address's own bucket holds a guesser there too.
    const fromHome = [];
    for (let i = 0; i < 5; i++) fromHome.push(await attempt(l, { handle: "erin" }, "192.0.2.10", "wrong"));
    expect(fromHome.filter((r) => r === "allowed").length).toBeLessThanOrEqual(3);
  });

  it("remembers no address when told not to (known days 0), and never for ChangePassword", async () => {
    const l = limiter({ knownDays: 0 });
    expect(await attempt(l, { handle: "gina" }, "192.0.2.20", "right")).toBe("allowed");
    for (let i = 0; i < 3; i++) await attempt(l, { handle: "gina" }, `198.51.100.${i + 1}`, "wrong");
    expect(typeof (await attempt(l, { handle: "gina" }, "192.0.2.20", "right"))).toBe("number");

    const m = limiter();
    expect(await attempt(m, { userId: "42" }, "192.0.2.30", "right")).toBe("allowed");
    for (let i = 0; i < 3; i++) expect(await attempt(m, { userId: "42" }, "192.0.2.31", "wrong")).toBe("allowed");
    expect(typeof (await attempt(m, { userId: "42" }, "192.0.2.30", "right"))).toBe("number");
    // A user id and a handle are different accounts' names, never confused.
    expect(await attempt(m, { handle: "42" }, "192.0.2.30", "wrong")).toBe("allowed");
  });

  it("refills: a bucket left alone lets guesses through again at its rate", async () => {
    const l = limiter({ failures: { perSecond: 20, burst: 2 } });
    await attempt(l, { handle: "hank" }, "192.0.2.40", "wrong");
    await attempt(l, { handle: "hank" }, "192.0.2.40", "wrong");
    const wait = await attempt(l, { handle: "hank" }, "192.0.2.40", "wrong");
    expect(typeof wait).toBe("number");
    await new Promise((r) => setTimeout(r, (wait as number) + 20));
    expect(await attempt(l, { handle: "hank" }, "192.0.2.40", "wrong")).toBe("allowed");
  });

  it("never limits an exempt address, and lets everything through when Redis is away", async () => {
    const l = limiter({}, ["127.0.0.1"]);
    for (let i = 0; i < 10; i++) expect(await attempt(l, { handle: "ivy" }, "::ffff:127.0.0.1", "wrong")).toBe("allowed");
    const gone = new Redis({ port: 1, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    const outcomes: string[] = [];
    const open = createAccountLimiter({
      redis: gone,
      limits: { failures: { perSecond: 1 / 3600, burst: 1 }, knownDays: 30 },
      exemptIps: [],
      log,
      onDecision: (o) => outcomes.push(o),
    });
    for (let i = 0; i < 3; i++) expect(await attempt(open, { handle: "ivy" }, "192.0.2.50", "wrong")).toBe("allowed");
    expect(outcomes).toEqual(["failed_open", "failed_open", "failed_open"]);
    gone.disconnect();
  });
});
