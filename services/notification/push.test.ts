// Web Push in memory: which endpoints are refused (SSRF), the push RPCs over a
// memory subscription store, the VAPID key, and the delivery handler over a
// fake sender (drops, retries, the last attempt, expiry). Real sends to a
// local HTTPS push service, decrypted, are in test/e2e/notifications.test.ts.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { createECDH, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { afterAll, describe, expect, it } from "vitest";
import { NotificationKind } from "../../gen/chirp/notification/v1/notification_pb.js";
import { NotificationService } from "../../gen/chirp/notification/v1/notification_service_pb.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { createLogger } from "../../lib/logger.js";
import type { Metrics } from "../../lib/metrics.js";
import { generateVapidKey, loadOrCreateVapidKey, parseVapidKey, resolveVapidKey } from "../../lib/push/vapid.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import { codeOf } from "../../lib/testing/in-memory.js";
import { loadNotificationConfig, type NotificationConfig } from "./config.js";
import type { NotificationContext } from "./context.js";
import { checkEndpoint, guardedLookup, isPublicAddress, parseEndpoint, type Resolve } from "./push-endpoint.js";
import { classify, createPushSender, type PushSender, type SendResult } from "./push-sender.js";
import { createPushDelivery, pushMetrics, PushRetryError, pushTopic, type PushEvent } from "./push.js";
import { routes } from "./routes.js";
import { endpointHash, type PushSubscriptionRow, type PushSubscriptionStore } from "./store.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A browser's subscription keys: a P-256 public point and a 16-byte secret, base64url. */
function browserKeys(): { p256dh: string; auth: string } {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  return { p256dh: ecdh.getPublicKey().toString("base64url"), auth: randomBytes(16).toString("base64url") };
}

/** A resolver with fixed answers. */
const dns =
  (answers: Record<string, string[]>): Resolve =>
  async (host) => {
    const found = answers[host];
    if (found === undefined) throw Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" });
    return found.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };

describe("push endpoints (no server-side request forgery)", () => {
  it("knows public addresses from loopback, private, link-local and special ones", () => {
    for (const a of ["8.8.8.8", "142.250.74.10", "2a00:1450:4001:82a::200a", "2606:4700::1111"]) expect(isPublicAddress(a), a).toBe(true);
    for (const a of [
      "127.0.0.1",
      "127.8.9.10",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
      "198.18.0.1",
      "::1",
      "::",
      "fe80::1",
      "fd00::1",
      "fc00::1",
      "ff02::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::ffff:10.0.0.1",
      "64:ff9b::a9fe:a9fe",
      "2002:7f00:1::1",
      "2001:db8::1",
      "not an address",
    ]) {
      expect(isPublicAddress(a), a).toBe(false);
    }
    expect(isPublicAddress("::ffff:8.8.8.8")).toBe(true);
  });

  it("takes https URLs with a host and no credentials, normalised", () => {
    expect(parseEndpoint("https://Push.Example:443/a/../b?x").href).toBe("https://push.example/b?x");
    for (const bad of ["http://push.example/x", "ftp://push.example/x", "https://user:pw@push.example/x", "not a url", "file:///etc/passwd"]) {
      expect(() => parseEndpoint(bad), bad).toThrow();
    }
  });

  it("refuses a host that is, or resolves to, any address that is not public, unless private endpoints are allowed", async () => {
    const resolve = dns({ "push.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"], "mixed.example": ["93.184.216.34", "10.0.0.7"], localhost: ["127.0.0.1", "::1"] });
    await expect(checkEndpoint(parseEndpoint("https://push.example/x"), { allowPrivate: false, resolve })).resolves.toBeUndefined();
    for (const url of ["https://mixed.example/x", "https://localhost:8443/x", "https://127.0.0.1/x", "https://[::1]/x", "https://169.254.169.254/latest", "https://10.0.0.1/x", "https://nowhere.example/x"]) {
      await expect(checkEndpoint(parseEndpoint(url), { allowPrivate: false, resolve }), url).rejects.toThrow();
    }
    await expect(checkEndpoint(parseEndpoint("https://localhost:8443/x"), { allowPrivate: true, resolve })).resolves.toBeUndefined();
  });

  it("refuses at connect time a name that has since been rebound to a private address", async () => {
    let answer = ["93.184.216.34"];
    const resolve: Resolve = async () => answer.map((address) => ({ address, family: 4 }));
    await checkEndpoint(parseEndpoint("https://rebind.example/x"), { allowPrivate: false, resolve });
    answer = ["127.0.0.1"];
    const lookup = guardedLookup({ allowPrivate: false, resolve });
    const err = await new Promise<Error | null>((done) => lookup("rebind.example", { all: true }, (e) => done(e)));
    expect(err?.name).toBe("PushEndpointError");
    // And through the sender: the send is refused before a byte leaves, and not retried.
    const sender = createPushSender({ vapid: parseVapidKey(generateVapidKey()), subject: "mailto:ops@chirp.test", timeoutMs: 2000, perOrigin: 2, allowPrivate: false, resolve });
    try {
      expect(await sender.send({ endpoint: "https://rebind.example/x", ...browserKeys() }, "{}", { ttlSeconds: 60 })).toEqual({ ok: false, reason: "refused", retry: false });
      expect(await sender.send({ endpoint: "https://127.0.0.1:1/x", ...browserKeys() }, "{}", { ttlSeconds: 60 })).toEqual({ ok: false, reason: "refused", retry: false });
      expect(await sender.send({ endpoint: "https://push.example/x", p256dh: "AAAA", auth: "AAAA" }, "{}", { ttlSeconds: 60 })).toEqual({ ok: false, reason: "invalid", retry: false });
    } finally {
      sender.close();
    }
  });

  it("classifies push service answers", () => {
    expect(classify(201)).toEqual({ ok: true, status: 201 });
    expect(classify(410)).toMatchObject({ reason: "gone", retry: false });
    expect(classify(404)).toMatchObject({ reason: "gone", retry: false });
    expect(classify(429)).toMatchObject({ reason: "unavailable", retry: true });
    expect(classify(503)).toMatchObject({ reason: "unavailable", retry: true });
    expect(classify(403)).toMatchObject({ reason: "rejected", retry: false });
    expect(classify(413)).toMatchObject({ reason: "rejected", retry: false });
  });
});

describe("the VAPID key", () => {
  it("is made once in its file (0600) and kept; its public half is an uncompressed P-256 point", () => {
    const dir = mkdtempSync(join(tmpdir(), "chirp-vapid-"));
    dirs.push(dir);
    const file = join(dir, "nested", "vapid-key.pem");
    const first = loadOrCreateVapidKey(file);
    const again = loadOrCreateVapidKey(file);
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    expect(again.publicKey).toBe(first.publicKey);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const point = Buffer.from(first.publicKey, "base64url");
    expect(point.length).toBe(65);
    expect(point[0]).toBe(4);
    expect(Buffer.from(first.privateKey, "base64url").length).toBe(32);
    expect(resolveVapidKey({}, file).source).toBe(file);
    expect(parseVapidKey(readFileSync(file, "utf8").replace(/\n/g, "\\n")).publicKey).toBe(first.publicKey);
    const given = generateVapidKey();
    expect(resolveVapidKey({ CHIRP_PUSH_VAPID_PRIVATE_KEY: given }, file)).toEqual({ pem: given, source: "CHIRP_PUSH_VAPID_PRIVATE_KEY" });
  });

  it("is required by the notification service, and must be P-256", () => {
    const problems = (env: Record<string, string>): string[] => {
      try {
        loadNotificationConfig(env);
        return [];
      } catch (err) {
        return (err as { problems: string[] }).problems;
      }
    };
    expect(problems({}).join()).toContain("CHIRP_PUSH_VAPID_PRIVATE_KEY is required");
    expect(problems({ CHIRP_PUSH_VAPID_PRIVATE_KEY: "nope" })).toHaveLength(1);
    const key = generateVapidKey();
    expect(problems({ CHIRP_PUSH_VAPID_PRIVATE_KEY: key })).toEqual([]);
    expect(problems({ CHIRP_PUSH_VAPID_PRIVATE_KEY: key, CHIRP_PUSH_VAPID_SUBJECT: "ops@chirp.test" })).toHaveLength(1);
    expect(problems({ CHIRP_PUSH_VAPID_PRIVATE_KEY: key, CHIRP_PUSH_CONCURRENCY: "8", CHIRP_PUSH_PER_ORIGIN: "8" })).toHaveLength(1);
  });
});

function memorySubscriptions(): PushSubscriptionStore & { rows: Map<bigint, PushSubscriptionRow[]> } {
  const rows = new Map<bigint, PushSubscriptionRow[]>();
  return {
    rows,
    async add(userId, sub, keep) {
      const mine = (rows.get(userId) ?? []).filter((r) => r.endpoint !== sub.endpoint);
      mine.unshift({ endpointHash: endpointHash(sub.endpoint), ...sub });
      rows.set(userId, mine.slice(0, keep));
    },
    async remove(userId, endpoint) {
      const mine = rows.get(userId) ?? [];
      rows.set(userId, mine.filter((r) => r.endpoint !== endpoint));
      return mine.length !== rows.get(userId)!.length;
    },
    async list(userId) {
      return [...(rows.get(userId) ?? [])];
    },
    async drop(userId, row) {
      rows.set(userId, (rows.get(userId) ?? []).filter((r) => !(r.endpoint === row.endpoint && r.p256dh === row.p256dh)));
    },
  };
}

describe("the push RPCs, in memory", () => {
  const vapid = parseVapidKey(generateVapidKey());
  const setup = (allowPrivate: boolean) => {
    const pushSubscriptions = memorySubscriptions();
    const push = { vapid, allowPrivate, maxSubscriptions: 3 } as NotificationConfig["push"];
    const ctx = { pushSubscriptions, notification: { push } as NotificationConfig } as unknown as NotificationContext;
    const resolve = dns({ "push.example": ["93.184.216.34"], "internal.example": ["10.0.0.5"], localhost: ["127.0.0.1"] });
    const client = createClient(NotificationService, createRouterTransport((r) => r.service(NotificationService, routes(ctx, { resolve }))));
    const as = (userId: bigint) => ({ headers: { [CALLER_ID_HEADER]: String(userId) } });
    return { client, as, rows: pushSubscriptions.rows };
  };

  it("gives the VAPID public key, and stores several subscriptions per user, keeping the newest", async () => {
    const { client, as, rows } = setup(false);
    expect((await client.getPushConfig({}, as(1n))).vapidPublicKey).toBe(vapid.publicKey);
    for (const i of [1, 2, 3, 4]) await client.registerPush({ endpoint: `https://push.example/sub/${i}`, ...browserKeys() }, as(1n));
    await client.registerPush({ endpoint: "https://push.example/sub/9", ...browserKeys() }, as(2n));
    expect(rows.get(1n)!.map((r) => r.endpoint)).toEqual(["https://push.example/sub/4", "https://push.example/sub/3", "https://push.example/sub/2"]);
    // Unregister is the caller's own, by endpoint; again is no error.
    await client.unregisterPush({ endpoint: "https://push.example/sub/3" }, as(1n));
    await client.unregisterPush({ endpoint: "https://push.example/sub/9" }, as(1n));
    await client.unregisterPush({ endpoint: "not a url" }, as(1n));
    expect(rows.get(1n)!.map((r) => r.endpoint)).toEqual(["https://push.example/sub/4", "https://push.example/sub/2"]);
    expect(rows.get(2n)!).toHaveLength(1);
  });

  it("refuses http, loopback, private and unresolvable endpoints and bad keys with InvalidArgument", async () => {
    const { client, as, rows } = setup(false);
    const keys = browserKeys();
    for (const endpoint of [
      "http://push.example/x",
      "https://localhost/x",
      "https://127.0.0.1:8443/x",
      "https://[::1]/x",
      "https://internal.example/x",
      "https://169.254.169.254/latest/meta-data",
      "https://unknown.example/x",
    ]) {
      expect(await codeOf(client.registerPush({ endpoint, ...keys }, as(1n))), endpoint).toBe(Code.InvalidArgument);
    }
    for (const bad of [{ p256dh: "AAAA" }, { auth: "AAAA" }, { p256dh: "!!" }, { p256dh: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString("base64url") }]) {
      expect(await codeOf(client.registerPush({ endpoint: "https://push.example/x", ...keys, ...bad }, as(1n))), JSON.stringify(bad)).toBe(Code.InvalidArgument);
    }
    expect(rows.size).toBe(0);
  });

  it("takes loopback endpoints when private endpoints are allowed (still https only)", async () => {
    const { client, as, rows } = setup(true);
    await client.registerPush({ endpoint: "https://127.0.0.1:8443/x", ...browserKeys() }, as(1n));
    expect(await codeOf(client.registerPush({ endpoint: "http://127.0.0.1:8443/x", ...browserKeys() }, as(1n)))).toBe(Code.InvalidArgument);
    expect(rows.get(1n)).toHaveLength(1);
  });
});

describe("delivery", () => {
  const log = createLogger("test", "silent");
  const setup = (answers: Record<string, SendResult>) => {
    const subscriptions = memorySubscriptions();
    const sent: Array<{ endpoint: string; payload: string; ttl: number; topic: string | undefined }> = [];
    const sender: PushSender = {
      async send(target, payload, options) {
        sent.push({ endpoint: target.endpoint, payload, ttl: options.ttlSeconds, topic: options.topic });
        return answers[target.endpoint] ?? { ok: true, status: 201 };
      },
      inFlight: () => 0,
      close: () => {},
    };
    const registry = new Registry();
    const metrics = pushMetrics({ registry } as unknown as Metrics);
    let clock = Date.UTC(2026, 5, 1, 12);
    const deliver = createPushDelivery({
      subscriptions,
      sender,
      hydrate: async (actorId, tweetId) =>
        actorId === 666n ? undefined : { actor: { id: String(actorId), handle: `u${actorId}`, displayName: `U ${actorId}` }, ...(tweetId === undefined ? {} : { tweetText: "x".repeat(300) }) },
      config: { ttlSeconds: 3600, maxAttempts: 3 },
      metrics,
      log,
      now: () => clock,
    });
    const event = (over: { actorId?: bigint; kind?: NotificationKind; redeliveryCount?: number; ageMs?: number } = {}): PushEvent =>
      ({
        subject: EVENTS.notificationCreated.subject,
        message: create(EVENTS.notificationCreated.schema, {
          notificationId: 77n,
          recipientId: 1n,
          kind: over.kind ?? NotificationKind.LIKE,
          actorId: over.actorId ?? 2n,
          tweetId: 500n,
          createTime: timestampFromMs(clock - 1000),
        }),
        eventId: "9001",
        redeliveryCount: over.redeliveryCount ?? 0,
        publishTime: new Date(clock - (over.ageMs ?? 500)),
      }) as unknown as PushEvent;
    const count = async (name: string): Promise<Record<string, number>> =>
      Object.fromEntries((await registry.getSingleMetric(name)!.get()).values.map((v) => [v.labels.reason ?? "", v.value]));
    const add = (endpoint: string) => subscriptions.add(1n, { endpoint, ...browserKeys() }, 10);
    return { deliver, event, sent, rows: subscriptions.rows, count, add, advance: (ms: number) => (clock += ms) };
  };

  it("sends each notification to every subscription of the recipient with the remaining TTL and its topic", async () => {
    const s = setup({});
    await s.add("https://a.example/1");
    await s.add("https://b.example/2");
    await s.deliver(s.event());
    expect(s.sent.map((x) => x.endpoint).sort()).toEqual(["https://a.example/1", "https://b.example/2"]);
    expect(s.sent[0]!.ttl).toBe(3599);
    expect(s.sent[0]!.topic).toBe(pushTopic(77n));
    const payload = JSON.parse(s.sent[0]!.payload);
    expect(payload).toMatchObject({ id: "77", kind: "like", actor: { handle: "u2" }, tweet: { id: "500" } });
    expect(payload.tweet.text).toHaveLength(140);
    expect(await s.count("chirp_push_sent_total")).toEqual({ "": 2 });
  });

  it("drops a subscription answered 404 or 410, and retries the others' failures only, until the last attempt", async () => {
    const s = setup({
      "https://gone.example/1": { ok: false, reason: "gone", retry: false, status: 410 },
      "https://down.example/1": { ok: false, reason: "unavailable", retry: true, status: 503 },
    });
    await s.add("https://gone.example/1");
    await s.add("https://down.example/1");
    await s.add("https://ok.example/1");
    await expect(s.deliver(s.event())).rejects.toBeInstanceOf(PushRetryError);
    expect(s.rows.get(1n)!.map((r) => r.endpoint).sort()).toEqual(["https://down.example/1", "https://ok.example/1"]);
    // The retry goes to the failed one only; the last attempt gives up without throwing.
    s.sent.length = 0;
    await expect(s.deliver(s.event({ redeliveryCount: 1 }))).rejects.toBeInstanceOf(PushRetryError);
    await s.deliver(s.event({ redeliveryCount: 2 }));
    expect(s.sent.map((x) => x.endpoint)).toEqual(["https://down.example/1", "https://down.example/1"]);
    expect(await s.count("chirp_push_dropped_total")).toEqual({ gone: 1 });
    expect(await s.count("chirp_push_failed_total")).toEqual({ unavailable: 3 });
  });

  it("sends nothing for a notification older than the TTL, nor one whose actor is gone", async () => {
    const s = setup({});
    await s.add("https://a.example/1");
    await s.deliver(s.event({ ageMs: 3_600_000 }));
    await s.deliver(s.event({ actorId: 666n }));
    expect(s.sent).toEqual([]);
    expect(await s.count("chirp_push_failed_total")).toEqual({ expired: 1 });
  });
});
