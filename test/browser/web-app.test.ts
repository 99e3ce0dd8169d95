// The web app in a real browser: Debian's chromium driven by playwright-core,
// against the whole system as `npm start` runs it (private cluster, every
// service, the gateway serving the page), with the gateway's default rate
// limits in force (loopback is not exempt here). Two people, one on a desktop
// window and one on a phone-sized one: bob follows alice, alice posts a photo,
// bob sees it arrive live, likes it and finds it by search; bob replies to
// alice and follows the conversation in thread views; bob quotes a tweet of
// alice's, which shows embedded in his quote until she deletes it; bob reposts
// one, and carol, who follows him, sees it on her home timeline as reposted by
// him until he takes it back. Screenshots go to test-output/screenshots/
// (git-ignored).
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PNG } from "pngjs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Mesh } from "../../devcluster/launch.js";
import { startSystem, type TestSystem } from "../support/system.js";

const CHROMIUM = process.env.CHIRP_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = join(import.meta.dirname, "../../test-output/screenshots");
// Flags for a headless chromium as root on a machine with no network but loopback.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const run = `${process.pid % 100_000}`;
const alice = { handle: `alice${run}`, name: "Alice Liddell", password: "wonderland-rabbit" };
const bob = { handle: `bob${run}`, name: "Bob", password: "builder-can-we-fix-it" };
/** Signed up through the API (replies step); on a phone of her own from the repost steps on. */
const carol = { handle: `carol${run}`, name: "Carol", password: "carol-sings-along" };
const tag = `#garden${run}`;

let system: TestSystem;
let mesh: Mesh;
let browser: Browser;
let desktop: BrowserContext;
let phone: BrowserContext;
let alicePage: Page;
let bobPage: Page;
/** Problems the pages reported: CSP violations, script errors. */
const problems: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}: install it with \`apt-get install chromium\` (Debian), or set CHIRP_CHROMIUM`);
  }
  mkdirSync(SHOTS, { recursive: true });
  system = await startSystem({
    env: {
      CHIRP_TIMELINE_STREAM_KEEPALIVE_MS: "2000",
      CHIRP_GATEWAY_RATE_EXEMPT_IPS: "",
    },
    router: false,
  });
  mesh = system.mesh;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  desktop = await browser.newContext({ viewport: { width: 1280, height: 860 }, baseURL: mesh.gatewayUrl });
  phone = await browser.newContext(phoneOptions());
  alicePage = await watch(await desktop.newPage(), "alice");
  bobPage = await watch(await phone.newPage(), "bob");
});

afterAll(async () => {
  await browser?.close();
  await system?.stop();
});

function phoneOptions(): Parameters<Browser["newContext"]>[0] {
  return { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, baseURL: mesh.gatewayUrl };
}

async function watch(page: Page, who: string): Promise<Page> {
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`${who}: ${m.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`${who}: ${err.message}`));
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

/** One public API call over Connect JSON, as the owner of `token`; anything but 200 fails the test. */
async function call<T>(method: string, body: unknown, token?: string): Promise<T> {
  const res = await fetch(`${mesh.gatewayUrl}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as T;
  expect(res.status, `${method}: ${JSON.stringify(json)}`).toBe(200);
  return json;
}

function tweetIdIn(url: string): string {
  const id = /#\/tweet\/(\d+)$/.exec(url)?.[1];
  if (id === undefined) throw new Error(`not a thread: ${url}`);
  return id;
}

/** The session token a page keeps. */
function tokenOf(page: Page): Promise<string> {
  return page.evaluate<string>("JSON.parse(localStorage.getItem('chirp.session')).token");
}

/** Reloads the page until `count()` gives `n`: timelines and search trail a post by the event pipeline. */
async function reloadUntil(page: Page, count: () => Promise<number>, n: number): Promise<void> {
  await expect
    .poll(
      async () => {
        await page.reload();
        await page.locator('.feed[aria-busy="false"]').waitFor({ state: "attached" });
        return count();
      },
      { timeout: 15_000, interval: 500 },
    )
    .toBe(n);
}

async function signUp(page: Page, who: typeof alice): Promise<void> {
  await page.goto("/#/signup");
  await page.getByLabel("Handle").fill(who.handle);
  await page.getByLabel("Name").fill(who.name);
  await page.getByLabel("Email").fill(`${who.handle}@example.com`);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(/#\/$/);
  await page.getByRole("heading", { name: "Home" }).waitFor();
}

/** A 640x400 PNG with stripes, made here. */
function photo(): Buffer {
  const width = 640;
  const height = 400;
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const band = Math.floor(x / 80) % 2 === 0;
      data[i] = band ? 40 : 250;
      data[i + 1] = Math.round((y / height) * 200) + 30;
      data[i + 2] = band ? 200 : 80;
      data[i + 3] = 255;
    }
  }
  return PNG.sync.write({ width, height, data });
}

describe("the web app", () => {
  it("shows the log-in page to someone signed out, on a phone", async () => {
    await bobPage.goto("/");
    await bobPage.getByRole("heading", { name: "Log in to Chirp" }).waitFor();
    await shot(bobPage, "phone-login");
  });

  it("signs up two people", async () => {
    await signUp(bobPage, bob);
    await signUp(alicePage, alice);
  });

  it("lets bob follow alice from her profile, with the counts updated", async () => {
    await bobPage.goto(`/#/u/${alice.handle}`);
    await bobPage.getByRole("heading", { name: alice.name }).waitFor();
    const follow = bobPage.getByRole("button", { name: "Follow", exact: true });
    await follow.click();
    await bobPage.getByRole("button", { name: "Unfollow" }).waitFor();
    await expect.poll(() => bobPage.locator('[data-stat="followers"] strong').textContent()).toBe("1");
    await shot(bobPage, "phone-profile");
  });

  it("shows bob alice's photo tweet live, the moment she posts it", async () => {
    await bobPage.goto("/#/");
    await bobPage.locator('#live-state[data-state="live"]').waitFor({ timeout: 15_000 });

    await alicePage.goto("/#/");
    const text = `Tulips are up ${tag} <img src=x onerror=alert(1)> & <b>not bold</b>`;
    await alicePage.getByLabel("Tweet text").fill(text);
    await alicePage.locator("#photo-input").setInputFiles({ name: "garden.png", mimeType: "image/png", buffer: photo() });
    await alicePage.locator(".preview img").waitFor();
    await alicePage.getByRole("button", { name: "Post" }).click();
    // On alice's own page at once.
    await alicePage.locator(".tweet", { hasText: "Tulips are up" }).waitFor();

    // On bob's, without a reload.
    const tweet = bobPage.locator(".tweet", { hasText: "Tulips are up" });
    await tweet.waitFor({ timeout: 10_000 });
    // Text is text: the markup in it is shown, not run or rendered.
    await expect.poll(() => tweet.locator(".text").textContent()).toBe(text);
    expect(await tweet.locator(".text img, .text b").count()).toBe(0);
    expect(await tweet.locator(".text a.tag").textContent()).toBe(tag);
    // The photo's thumbnail loads.
    const img = tweet.locator("img.photo");
    await expect.poll(() => img.evaluate((el) => {
            const image = el as unknown as { complete: boolean; naturalWidth: number };
            return image.complete ? image.naturalWidth : 0;
          }), { timeout: 10_000 }).toBeGreaterThan(0);
    await shot(bobPage, "phone-home-live");
  });

  it("lets bob like it, and tells alice", async () => {
    const like = bobPage.locator(".tweet", { hasText: "Tulips are up" }).getByRole("button", { name: "Like" });
    await like.click();
    await expect.poll(() => like.getAttribute("aria-pressed")).toBe("true");
    expect(await like.textContent()).toContain("1");
    await alicePage.locator(".toast", { hasText: `@${bob.handle} liked your tweet` }).waitFor({ timeout: 10_000 });
    await shot(alicePage, "desktop-home");
  });

  it("shows alice her unread count, and her notifications page: bob's like and follow, read once she has seen them", async () => {
    const badge = alicePage.locator('a[href="#/notifications"] .count-badge');
    await expect.poll(() => badge.textContent(), { timeout: 10_000 }).toBe("2");
    await alicePage.getByRole("link", { name: /^Notifications/ }).click();
    await alicePage.getByRole("heading", { name: "Notifications" }).waitFor();
    const items = alicePage.locator(".notification");
    await expect.poll(() => items.count()).toBe(2);
    expect(await items.nth(0).textContent()).toContain(`${bob.name} liked your tweet`);
    expect(await items.nth(1).textContent()).toContain(`${bob.name} followed you`);
    await items.nth(0).locator(".notification-tweet", { hasText: "Tulips are up" }).waitFor();
    await expect.poll(() => badge.isHidden()).toBe(true);
    await shot(alicePage, "desktop-notifications");
  });

  it("counts a new notification on alice's badge live, without a reload", async () => {
    await alicePage.goto("/#/");
    await alicePage.locator('#live-state[data-state="live"]').waitFor({ timeout: 15_000 });
    // From someone nobody here follows, so no timeline below changes.
    const dora = await call<{ token: string }>("chirp.user.v1.UserService/SignUp", {
      handle: `dora${run}`,
      displayName: "Dora",
      email: `dora${run}@example.com`,
      password: "dora-explores-a-lot",
    });
    await call(`chirp.tweet.v1.TweetService/PostTweet`, { text: `@${alice.handle} your tulips!` }, dora.token);
    await expect.poll(() => alicePage.locator('a[href="#/notifications"] .count-badge').textContent(), { timeout: 10_000 }).toBe("1");
  });

  it("lets alice turn on push notifications: a service worker, permission, a subscription with the server's VAPID key; the worker shows a push", async () => {
    // Offline, chromium cannot reach its own push service: PushManager.subscribe is called (with the key recorded) and fails, and the page says so.
    await desktop.grantPermissions(["notifications"], { origin: mesh.gatewayUrl });
    await desktop.addInitScript(`{
      const subscribe = PushManager.prototype.subscribe;
      PushManager.prototype.subscribe = function (options) {
        const key = options && options.applicationServerKey;
        window.pushKey = key instanceof Uint8Array ? [...key] : [];
        return subscribe.call(this, options);
      };
    }`);
    await alicePage.goto("/#/notifications");
    await alicePage.reload(); // a new document, for the init script
    const config = alicePage.waitForResponse((r) => r.url().endsWith("/GetPushConfig"));
    const toggle = alicePage.locator(".push-settings");
    await toggle.locator("button").click();
    const { vapidPublicKey } = (await (await config).json()) as { vapidPublicKey: string };
    await expect.poll(() => toggle.getAttribute("data-state"), { timeout: 15_000 }).toMatch(/^(on|failed)$/);
    expect(await alicePage.evaluate("window.pushKey")).toEqual([...Buffer.from(vapidPublicKey, "base64url")]);
    const sw = desktop.serviceWorkers().find((w) => w.url().endsWith("/sw.js")) ?? (await desktop.waitForEvent("serviceworker"));
    expect(sw.url()).toBe(`${mesh.gatewayUrl}/sw.js`);
    // What the server would push, delivered to the worker through the DevTools protocol (as DevTools' "Push" button does).
    const cdp = await desktop.newCDPSession(alicePage);
    const registrationId = new Promise<string>((resolve) =>
      cdp.on("ServiceWorker.workerRegistrationUpdated", (e) => {
        const found = e.registrations.find((r) => r.scopeURL === `${mesh.gatewayUrl}/` && !r.isDeleted);
        if (found !== undefined) resolve(found.registrationId);
      }),
    );
    // A push goes to the registration's active worker: one still installing or activating would not get it.
    const activated = new Set<string>();
    cdp.on("ServiceWorker.workerVersionUpdated", (e) => {
      for (const v of e.versions) if (v.status === "activated") activated.add(v.registrationId);
    });
    await cdp.send("ServiceWorker.enable");
    await alicePage.evaluate("navigator.serviceWorker.ready.then(() => true)");
    const registration = await registrationId;
    await expect.poll(() => activated.has(registration), { timeout: 10_000 }).toBe(true);
    const data = JSON.stringify({ id: "1", kind: "like", actor: { id: "1", handle: bob.handle, displayName: bob.name }, tweet: { id: "2", text: "Tulips!" } });
    await cdp.send("ServiceWorker.deliverPushMessage", { origin: mesh.gatewayUrl, registrationId: registration, data });
    const shown = (): Promise<string[]> => sw.evaluate("self.registration.getNotifications().then((all) => all.map((n) => n.title + ': ' + n.body))");
    await expect.poll(shown, { timeout: 10_000 }).toContain(`${bob.name} liked your tweet: Tulips!`);
    await cdp.detach();
  });

  it("finds it by search, and the hashtag trends", async () => {
    // The index trails the post by the event pipeline: search again until it is in.
    await bobPage.goto(`/#/search?q=${encodeURIComponent(tag)}`);
    await reloadUntil(bobPage, () => bobPage.locator(".tweet", { hasText: "Tulips are up" }).count(), 1);
    await shot(bobPage, "phone-search");
    await alicePage.goto("/#/search");
    await alicePage.locator(".search-trends .trends-list a", { hasText: tag }).first().waitFor({ timeout: 10_000 });
    await alicePage.locator(".search-trends .trends-list a", { hasText: tag }).first().click();
    await alicePage.locator(".tweet", { hasText: "Tulips are up" }).waitFor();
    await shot(alicePage, "desktop-search");
  });

  it("loads older tweets as bob scrolls (infinite scroll)", async () => {
    // 24 more by alice through the API (her write burst allows 30).
    const login = await fetch(`${mesh.gatewayUrl}/chirp.user.v1.UserService/LogIn`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ handle: alice.handle, password: alice.password }),
    });
    const { token } = (await login.json()) as { token: string };
    for (let i = 1; i <= 24; i++) {
      const res = await fetch(`${mesh.gatewayUrl}/chirp.tweet.v1.TweetService/PostTweet`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ text: `Note ${i} from the garden` }),
      });
      expect(res.status).toBe(200);
    }
    await bobPage.goto("/#/");
    await bobPage.reload();
    await bobPage.locator(".tweet", { hasText: "Note 24 from the garden" }).waitFor({ timeout: 10_000 });
    // The first page is 20; the rest arrive as the end of the list comes into view.
    await expect
      .poll(
        async () => {
          await bobPage.mouse.wheel(0, 4000);
          return bobPage.locator(".tweet").count();
        },
        { timeout: 15_000 },
      )
      .toBe(25);
    expect(await bobPage.locator(".tweet", { hasText: "Tulips are up" }).count()).toBe(1);
  });

  describe("replies and threads", () => {
    const question = "Who wants tulip bulbs? I have far too many";
    const answer = "Me, please: the red ones";
    const followUp = "Or the yellow ones, if the red are gone";
    let questionUrl = "";
    let answerUrl = "";
    let followUpUrl = "";
    const thread = (): { focus: ReturnType<Page["locator"]>; ancestors: ReturnType<Page["locator"]>; replies: ReturnType<Page["locator"]> } => ({
      focus: bobPage.locator(".thread-chain .tweet.focus"),
      ancestors: bobPage.locator(".thread-chain .tweet:not(.focus)"),
      replies: bobPage.locator(".thread .feed .tweet"),
    });

    it("lets bob reply to alice's new tweet from his timeline, and counts it", async () => {
      // Bob is on his home timeline (the step above), live again after its reload.
      await bobPage.locator('#live-state[data-state="live"]').waitFor({ timeout: 15_000 });
      await alicePage.goto("/#/");
      await alicePage.getByLabel("Tweet text").fill(question);
      await alicePage.getByRole("button", { name: "Post", exact: true }).click();
      await alicePage.locator(".tweet", { hasText: question }).waitFor();

      const card = bobPage.locator(".tweet", { hasText: question });
      await card.waitFor({ timeout: 10_000 });
      const reply = card.getByRole("button", { name: "Reply", exact: true });
      expect(await reply.textContent()).toBe("↩ 0");
      await reply.click();
      expect(await reply.getAttribute("aria-expanded")).toBe("true");
      await card.getByLabel("Reply text").fill(answer);
      await shot(bobPage, "phone-reply-box");
      await card.getByRole("button", { name: "Post reply" }).click();
      await expect.poll(() => reply.textContent()).toBe("↩ 1");
      // The box closes once the reply is posted.
      expect(await card.getByLabel("Reply text").count()).toBe(0);
      expect(await reply.getAttribute("aria-expanded")).toBe("false");
    });

    it("opens the thread from the tweet's text: alice's tweet, then bob's reply", async () => {
      await bobPage.locator(".tweet", { hasText: question }).locator(".text").click();
      await bobPage.waitForURL(/#\/tweet\/\d+$/);
      questionUrl = bobPage.url();
      const { focus, ancestors, replies } = thread();
      await focus.filter({ hasText: question }).waitFor();
      expect(await ancestors.count()).toBe(0);
      // The count as the backend keeps it.
      expect(await focus.getByRole("button", { name: "Reply", exact: true }).textContent()).toBe("↩ 1");
      await replies.first().waitFor();
      expect(await replies.locator(".text").allTextContents()).toEqual([answer]);
      // Replies under the tweet they answer do not repeat "Replying to".
      expect(await replies.locator(".replying-to").count()).toBe(0);
    });

    it("shows a reply's thread with its parent above, and a reply to the reply under both", async () => {
      const { focus, ancestors, replies } = thread();
      await replies.filter({ hasText: answer }).locator("a.permalink").click();
      await focus.filter({ hasText: answer }).waitFor();
      answerUrl = bobPage.url();
      expect(tweetIdIn(answerUrl)).not.toBe(tweetIdIn(questionUrl));
      expect(await ancestors.locator(".text").allTextContents()).toEqual([question]);
      expect(await bobPage.locator(".thread .feed-status").textContent()).toBe("No replies yet.");

      // The thread's own tweet has its reply box open.
      await focus.getByLabel("Reply text").fill(followUp);
      await focus.getByRole("button", { name: "Post reply" }).click();
      await replies.filter({ hasText: followUp }).waitFor();
      await expect.poll(() => focus.getByRole("button", { name: "Reply", exact: true }).textContent()).toBe("↩ 1");
      expect(await focus.getByLabel("Reply text").inputValue()).toBe("");

      await replies.filter({ hasText: followUp }).locator("a.permalink").click();
      await focus.filter({ hasText: followUp }).waitFor();
      followUpUrl = bobPage.url();
      // Root first, then its reply, then (highlighted) the reply to the reply.
      expect(await ancestors.locator(".text").allTextContents()).toEqual([question, answer]);
      await shot(bobPage, "phone-thread");
    });

    it("marks a reply in a timeline: 'Replying to @alice' opens her thread", async () => {
      // Bob's own tweets reach his home timeline through the fan-out: read it until they are in.
      await bobPage.goto("/#/");
      const mine = bobPage.locator(".tweet", { hasText: answer });
      await reloadUntil(bobPage, () => mine.count(), 1);
      const link = mine.locator(".replying-to a");
      await expect.poll(() => link.textContent()).toBe(`Replying to @${alice.handle}`);
      await link.click();
      await bobPage.waitForURL(questionUrl);
      await thread().focus.filter({ hasText: question }).waitFor();
    });

    it("loads more replies as bob scrolls (oldest first)", async () => {
      const { token } = await call<{ token: string }>("chirp.user.v1.UserService/SignUp", {
        handle: carol.handle,
        displayName: carol.name,
        email: `${carol.handle}@example.com`,
        password: carol.password,
      });
      // 20 replies more make 21: a page of 20, then one.
      for (let i = 1; i <= 20; i++) {
        await call("chirp.tweet.v1.TweetService/PostTweet", { text: `Bulb wish ${i}`, replyToTweetId: tweetIdIn(questionUrl) }, token);
      }
      await bobPage.goto(questionUrl);
      await bobPage.reload();
      const { focus, replies } = thread();
      await focus.filter({ hasText: question }).waitFor();
      expect(await focus.getByRole("button", { name: "Reply", exact: true }).textContent()).toBe("↩ 21");
      await replies.nth(19).waitFor();
      expect(await replies.count()).toBe(20);
      expect(await bobPage.getByRole("button", { name: "More replies" }).count()).toBe(1);
      await expect
        .poll(
          async () => {
            await bobPage.mouse.wheel(0, 4000);
            return replies.count();
          },
          { timeout: 15_000 },
        )
        .toBe(21);
      const texts = await replies.locator(".text").allTextContents();
      expect(texts[0]).toBe(answer);
      expect(texts.slice(1)).toEqual(Array.from({ length: 20 }, (_, i) => `Bulb wish ${i + 1}`));
      expect(await bobPage.getByRole("button", { name: "More replies" }).count()).toBe(0);
      await shot(bobPage, "phone-thread-replies");
    });

    it("shows a deleted tweet in a thread as 'This tweet was deleted'", async () => {
      await call("chirp.tweet.v1.TweetService/DeleteTweet", { tweetId: tweetIdIn(answerUrl) }, await tokenOf(bobPage));
      await bobPage.goto(followUpUrl);
      await bobPage.reload();
      const { focus, ancestors } = thread();
      await focus.filter({ hasText: followUp }).waitFor();
      expect(await ancestors.count()).toBe(2);
      expect(await ancestors.nth(0).locator(".text").textContent()).toBe(question);
      expect(await ancestors.nth(1).textContent()).toBe("This tweet was deleted");
      await shot(bobPage, "phone-thread-tombstone");
      // The deleted tweet's own thread is gone.
      await bobPage.goto(answerUrl);
      await bobPage.getByText("This tweet was deleted, or never existed.").waitFor();
      // Anyone may read a thread; alice, on a desktop, sees the same.
      await alicePage.goto(followUpUrl);
      await alicePage.locator(".thread-chain .tweet.focus", { hasText: followUp }).waitFor();
      expect(await alicePage.locator(".thread-chain .tombstone").count()).toBe(1);
      await shot(alicePage, "desktop-thread");
    });
  });

  describe("quotes", () => {
    const original = `The garden opens on Saturday, bring a basket ${run}`;
    const comment = "Worth the trip: I went last year";
    let originalId = "";
    /** Bob's quote in a list of tweets (only it has his comment). */
    const quoteCard = (): ReturnType<Page["locator"]> => bobPage.locator(".tweet", { has: bobPage.locator(".text", { hasText: comment }) });

    it("lets bob quote alice's tweet with a comment from his timeline, and counts it", async () => {
      // Bob's home timeline, live (it has stayed open since the reply steps' reload).
      await bobPage.goto("/#/");
      await bobPage.locator('#live-state[data-state="live"]').waitFor({ timeout: 15_000 });
      await alicePage.goto("/#/");
      await alicePage.getByLabel("Tweet text").fill(original);
      await alicePage.locator("#photo-input").setInputFiles({ name: "basket.png", mimeType: "image/png", buffer: photo() });
      await alicePage.locator(".preview img").waitFor();
      await alicePage.getByRole("button", { name: "Post", exact: true }).click();
      await alicePage.locator(".tweet", { hasText: original }).waitFor();

      const arrived = bobPage.locator(".tweet", { hasText: original });
      await arrived.waitFor({ timeout: 10_000 });
      originalId = (await arrived.getAttribute("data-id")) ?? "";
      // By id from here on: bob's quote will contain alice's text too.
      const card = bobPage.locator(`.tweet[data-id="${originalId}"]`);
      const quote = card.getByRole("button", { name: "Quote", exact: true });
      expect(await quote.textContent()).toBe("❝ 0");
      await quote.click();
      expect(await quote.getAttribute("aria-expanded")).toBe("true");
      // The box shows the tweet being quoted, as a card that does not navigate away.
      const box = card.locator(".quote-composer");
      expect(await box.locator(".quoted .quoted-text").textContent()).toBe(original);
      expect(await box.locator("a.quoted").count()).toBe(0);
      await box.locator("img.quoted-photo").waitFor();
      await card.getByLabel("Quote text").fill(comment);
      await box.scrollIntoViewIfNeeded();
      await shot(bobPage, "phone-quote-box");
      await card.getByRole("button", { name: "Post quote" }).click();
      await expect.poll(() => quote.textContent()).toBe("❝ 1");
      expect(await card.getByLabel("Quote text").count()).toBe(0);
      expect(await quote.getAttribute("aria-expanded")).toBe("false");
      // On top of his timeline at once.
      await bobPage.locator(".feed-list > .tweet").first().filter({ hasText: comment }).waitFor();
    });

    it("shows bob's comment on his timeline with alice's tweet embedded, which opens her thread", async () => {
      // As the home timeline reads it (through the fan-out): read it until it is in.
      const mine = quoteCard();
      await reloadUntil(bobPage, () => mine.count(), 1);
      const embed = mine.locator("a.quoted");
      expect(await embed.locator(".quoted-text").textContent()).toBe(original);
      expect(await embed.locator(".quoted-head .name").textContent()).toBe(alice.name);
      expect(await embed.locator(".quoted-head .handle").textContent()).toBe(`@${alice.handle}`);
      expect(await embed.getAttribute("href")).toBe(`#/tweet/${originalId}`);
      await mine.scrollIntoViewIfNeeded();
      // The photo's thumbnail loads.
      const thumb = embed.locator("img.quoted-photo");
      await expect.poll(() => thumb.evaluate((el) => {
              const image = el as unknown as { complete: boolean; naturalWidth: number };
              return image.complete ? image.naturalWidth : 0;
            }), { timeout: 10_000 }).toBeGreaterThan(0);
      expect(await bobPage.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth")).toBeLessThanOrEqual(0);
      await shot(bobPage, "phone-quote");

      await embed.click();
      await bobPage.waitForURL(new RegExp(`#/tweet/${originalId}$`));
      const focus = bobPage.locator(".thread-chain .tweet.focus");
      await focus.filter({ hasText: original }).waitFor();
      // The count as the backend keeps it.
      expect(await focus.getByRole("button", { name: "Quote", exact: true }).textContent()).toBe("❝ 1");
    });

    it("shows alice her tweet's quote count", async () => {
      await alicePage.goto(`/#/u/${alice.handle}`);
      const card = alicePage.locator(`.tweet[data-id="${originalId}"]`);
      await card.waitFor();
      expect(await card.getByRole("button", { name: "Quote", exact: true }).textContent()).toBe("❝ 1");
    });

    it("reads 'This tweet was deleted' in the quote once alice deletes her tweet", async () => {
      await call("chirp.tweet.v1.TweetService/DeleteTweet", { tweetId: originalId }, await tokenOf(alicePage));
      await bobPage.goto("/#/");
      await bobPage.reload();
      const mine = quoteCard();
      await mine.waitFor();
      expect(await mine.locator(".quoted").textContent()).toBe("This tweet was deleted");
      expect(await mine.locator("a.quoted").count()).toBe(0);
      await mine.scrollIntoViewIfNeeded();
      await shot(bobPage, "phone-quote-deleted");
      // The same in the quote's own thread.
      await mine.locator("a.permalink").click();
      const focus = bobPage.locator(".thread-chain .tweet.focus");
      await focus.filter({ hasText: comment }).waitFor();
      expect(await focus.locator(".quoted").textContent()).toBe("This tweet was deleted");
    });
  });

  describe("reposts", () => {
    const original = `Seed swap at the library on Sunday ${run}`;
    let originalId = "";
    /** Alice's tweet on a page, by id (a repost entry carries the original's id). */
    const cardOn = (page: Page): ReturnType<Page["locator"]> => page.locator(`.tweet[data-id="${originalId}"]`);
    let carolPage: Page;

    it("lets bob repost alice's tweet from his timeline: pressed, counted", async () => {
      // Carol follows bob (only him), so his repost reaches her home timeline.
      const { token: carolToken } = await call<{ token: string }>("chirp.user.v1.UserService/LogIn", { handle: carol.handle, password: carol.password });
      const bobId = await bobPage.evaluate<string>("JSON.parse(localStorage.getItem('chirp.session')).userId");
      await call("chirp.graph.v1.GraphService/Follow", { userId: bobId }, carolToken);
      const posted = await call<{ tweet: { id: string } }>("chirp.tweet.v1.TweetService/PostTweet", { text: original }, await tokenOf(alicePage));
      originalId = posted.tweet.id;

      await bobPage.goto("/#/");
      await reloadUntil(bobPage, () => cardOn(bobPage).count(), 1);
      const repost = cardOn(bobPage).getByRole("button", { name: "Repost", exact: true });
      expect(await repost.textContent()).toBe("↻ 0");
      expect(await repost.getAttribute("aria-pressed")).toBe("false");
      await repost.click();
      await expect.poll(() => repost.getAttribute("aria-pressed")).toBe("true");
      expect(await repost.textContent()).toBe("↻ 1");
      // As the backend keeps it (repostedByViewer), after a reload.
      await bobPage.reload();
      await cardOn(bobPage).waitFor();
      expect(await repost.getAttribute("aria-pressed")).toBe("true");
      expect(await repost.textContent()).toBe("↻ 1");
    });

    it("shows carol alice's tweet on her home timeline, 'Bob reposted' above it", async () => {
      const context = await browser.newContext(phoneOptions());
      carolPage = await watch(await context.newPage(), "carol");
      await carolPage.goto("/#/login");
      await carolPage.getByLabel("Handle").fill(carol.handle);
      await carolPage.getByLabel("Password").fill(carol.password);
      await carolPage.getByRole("button", { name: "Log in" }).click();
      await carolPage.getByRole("heading", { name: "Home" }).waitFor();

      const card = cardOn(carolPage);
      await reloadUntil(carolPage, () => card.count(), 1);
      const by = card.getByRole("link", { name: `${bob.name} reposted`, exact: true });
      expect(await card.locator(".reposted-by").textContent()).toBe(`↻${bob.name} reposted`);
      expect(await by.getAttribute("href")).toBe(`#/u/${bob.handle}`);
      // The tweet itself is alice's.
      expect(await card.locator("header .name").textContent()).toBe(alice.name);
      expect(await card.locator(".text").textContent()).toBe(original);
      const repost = card.getByRole("button", { name: "Repost", exact: true });
      expect(await repost.textContent()).toBe("↻ 1");
      expect(await repost.getAttribute("aria-pressed")).toBe("false");
      expect(await carolPage.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth")).toBeLessThanOrEqual(0);
      await card.scrollIntoViewIfNeeded();
      await shot(carolPage, "phone-repost");

      await by.click();
      await carolPage.getByRole("heading", { name: bob.name }).waitFor();
    });

    it("lets bob unrepost it, and it leaves carol's timeline", async () => {
      const repost = cardOn(bobPage).getByRole("button", { name: "Repost", exact: true });
      await repost.click();
      await expect.poll(() => repost.getAttribute("aria-pressed")).toBe("false");
      expect(await repost.textContent()).toBe("↻ 0");
      await carolPage.goto("/#/");
      await reloadUntil(carolPage, () => cardOn(carolPage).count(), 0);
    });
  });

  it("lets bob mute alice from her profile: her tweets leave his home timeline, and come back when he unmutes", async () => {
    await bobPage.goto(`/#/u/${alice.handle}`);
    await bobPage.getByRole("button", { name: "Block", exact: true }).waitFor();
    await bobPage.getByRole("button", { name: "Mute", exact: true }).click();
    await bobPage.getByRole("button", { name: "Unmute" }).waitFor();
    await bobPage.goto("/#/");
    await bobPage.getByRole("heading", { name: "Home" }).waitFor();
    await reloadUntil(bobPage, () => bobPage.locator(".tweet", { hasText: "Note 24 from the garden" }).count(), 0);
    await bobPage.goto(`/#/u/${alice.handle}`);
    await bobPage.getByRole("button", { name: "Unmute" }).click();
    await bobPage.getByRole("button", { name: "Mute", exact: true }).waitFor();
    await bobPage.goto("/#/");
    await bobPage.getByRole("heading", { name: "Home" }).waitFor();
    await reloadUntil(bobPage, () => bobPage.locator(".tweet", { hasText: "Note 24 from the garden" }).count(), 1);
  });

  it("lets bob unfollow, log out and log back in", async () => {
    await bobPage.goto(`/#/u/${alice.handle}`);
    await bobPage.getByRole("button", { name: "Unfollow" }).click();
    await bobPage.getByRole("button", { name: "Follow", exact: true }).waitFor();
    await expect.poll(() => bobPage.locator('[data-stat="followers"] strong').textContent()).toBe("0");
    await bobPage.getByRole("button", { name: "Log out" }).click();
    await bobPage.getByRole("heading", { name: "Log in to Chirp" }).waitFor();
    expect(await bobPage.evaluate<string | null>("localStorage.getItem('chirp.session')")).toBeNull();
    await bobPage.getByLabel("Handle").fill(bob.handle);
    await bobPage.getByLabel("Password").fill("not the password");
    await bobPage.getByRole("button", { name: "Log in" }).click();
    await bobPage.getByText("Wrong handle or password.").waitFor();
    await bobPage.getByLabel("Password").fill(bob.password);
    await bobPage.getByRole("button", { name: "Log in" }).click();
    await bobPage.getByRole("heading", { name: "Home" }).waitFor();
    // No longer following alice: her tweets are gone from his home timeline.
    await bobPage.locator(".feed[aria-busy=false]").waitFor({ state: "attached" });
    expect(await bobPage.locator(".tweet", { hasText: "Note 24 from the garden" }).count()).toBe(0);
  });

  it("fits a phone's width, and broke no policy", async () => {
    for (const page of [bobPage]) {
      // (A string: this file is type-checked without the DOM's types.)
      const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
      expect(overflow).toBeLessThanOrEqual(0);
    }
    expect(problems).toEqual([]);
  });
});
