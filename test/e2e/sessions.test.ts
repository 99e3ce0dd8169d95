// Sessions through the gateway (issue 21, item 3), on the single process as
// `npm start` runs it: every sign-up and log-in is a session; LogOut and
// RevokeSession end one and ChangePassword every other, and a token of an
// ended session is refused within a second (the gateway follows the
// ended-sessions bucket in NATS; no database read per request).
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { TEST_PASSWORD, gatewayApi, type Account } from "./support/api.js";

let system: TestSystem;

beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.stop();
});

const U = "chirp.user.v1.UserService";
const { call, ok, signUp } = gatewayApi(() => system.mesh.gatewayUrl, "se");

interface ApiSession {
  id: string;
  createTime: string;
  lastActiveTime: string;
  userAgent: string;
  current: boolean;
}

/** LogIn as `who`, sending `agent` as the User-Agent. */
async function logIn(who: Account, agent: string, password = TEST_PASSWORD): Promise<string> {
  const res = await fetch(`${system.mesh.gatewayUrl}/${U}/LogIn`, {
    method: "POST",
    headers: { "content-type": "application/json", "user-agent": agent },
    body: JSON.stringify({ handle: who.handle, password }),
  });
  const body = (await res.json()) as { token?: string; code?: string };
  if (res.status !== 200) throw new Error(`LogIn: ${res.status} ${body.code}`);
  return body.token!;
}
const sessions = async (token: string) => (await ok<{ sessions: ApiSession[] }>(`${U}/ListSessions`, {}, token)).sessions;
/** The code a call with `token` gets (undefined: it worked). */
const probe = async (token: string) => (await call(`${U}/GetUser`, { handle: "nobody_here" }, token)).code ?? "ok";
const refusedWithin1s = (token: string, what: string) => eventually(what, async () => (await probe(token)) === "unauthenticated", { timeoutMs: 1000, intervalMs: 20 });

describe("sessions", () => {
  it("lists the caller's sessions newest first with their clients, and RevokeSession ends one (and only the caller's)", async () => {
    const alice = await signUp();
    const bob = await signUp();
    const second = await logIn(alice, "chirp-test/2 (phone)");
    const listed = await sessions(alice.token);
    expect(listed.map((s) => [s.userAgent, s.current])).toEqual([
      ["chirp-test/2 (phone)", false],
      [expect.any(String), true],
    ]);
    expect(BigInt(listed[0]!.id) > BigInt(listed[1]!.id)).toBe(true);
    // Another user's session, or one that never was: NotFound, and nothing ends.
    expect((await call(`${U}/RevokeSession`, { sessionId: listed[0]!.id }, bob.token)).code).toBe("not_found");
    expect((await call(`${U}/RevokeSession`, { sessionId: "12345" }, alice.token)).code).toBe("not_found");
    expect(await probe(second)).toBe("not_found");
    await ok(`${U}/RevokeSession`, { sessionId: listed[0]!.id }, alice.token);
    await refusedWithin1s(second, "the revoked session's token refused");
    expect(await probe(alice.token)).toBe("not_found");
    expect((await sessions(alice.token)).map((s) => s.current)).toEqual([true]);
    // Again: no change.
    await ok(`${U}/RevokeSession`, { sessionId: listed[0]!.id }, alice.token);
  });

  it("LogOut ends the presented session at once, on every call path, and no other", async () => {
    const carol = await signUp();
    const other = await logIn(carol, "chirp-test/other");
    await ok(`${U}/LogOut`, {}, carol.token);
    await refusedWithin1s(carol.token, "the logged-out token refused");
    expect((await call("chirp.timeline.v1.TimelineService/GetHomeTimeline", { pageSize: 5 }, carol.token)).code).toBe("unauthenticated");
    const upload = await fetch(`${system.mesh.gatewayUrl}/media`, { method: "POST", headers: { authorization: `Bearer ${carol.token}`, "content-type": "image/png" }, body: "x" });
    expect(upload.status).toBe(401);
    expect(await probe(other)).toBe("not_found");
    expect((await sessions(other)).length).toBe(1);
  });

  it("ChangePassword needs the current password, ends every other session and returns a working token", async () => {
    const dave = await signUp();
    const phone = await logIn(dave, "chirp-test/phone");
    const laptop = await logIn(dave, "chirp-test/laptop");
    expect((await call(`${U}/ChangePassword`, { currentPassword: "not it at all", newPassword: "a new password" }, dave.token)).code).toBe("permission_denied");
    expect((await call(`${U}/ChangePassword`, { currentPassword: TEST_PASSWORD, newPassword: "short" }, dave.token)).code).toBe("invalid_argument");
    expect((await call(`${U}/ChangePassword`, { currentPassword: TEST_PASSWORD, newPassword: "a new password" })).code).toBe("unauthenticated");
    expect(await probe(phone)).toBe("not_found");
    const { token } = await ok<{ token: string }>(`${U}/ChangePassword`, { currentPassword: TEST_PASSWORD, newPassword: "a new password" }, dave.token);
    await refusedWithin1s(phone, "the phone's session ended");
    await refusedWithin1s(laptop, "the laptop's session ended");
    expect(await probe(token)).toBe("not_found");
    expect(await probe(dave.token)).toBe("not_found");
    expect((await sessions(token)).map((s) => s.current)).toEqual([true]);
    await expect(logIn(dave, "x", TEST_PASSWORD)).rejects.toThrow(/401/);
    expect(await probe(await logIn(dave, "x", "a new password"))).toBe("not_found");
  });

  it("keeps each session's last activity from the gateways' reports, and refuses the session RPCs without a token", async () => {
    const erin = await signUp();
    const [created] = await sessions(erin.token);
    // The first authenticated call of a session is reported at once (later ones at most every few minutes).
    const seen = await eventually("last activity recorded", async () => {
      const [s] = await sessions(erin.token);
      return s !== undefined && Date.parse(s.lastActiveTime) > Date.parse(created!.createTime) && s;
    });
    expect(Date.parse(seen.lastActiveTime)).toBeLessThanOrEqual(Date.now() + 1000);
    for (const method of ["LogOut", "ListSessions", "ChangePassword", "RevokeSession"]) {
      const body = method === "ChangePassword" ? { currentPassword: "x", newPassword: "long enough" } : method === "RevokeSession" ? { sessionId: "1" } : {};
      expect({ method, code: (await call(`${U}/${method}`, body)).code }).toEqual({ method, code: "unauthenticated" });
    }
    expect((await call(`${U}/RevokeSession`, { sessionId: "0" }, erin.token)).code).toBe("invalid_argument");
  });
});

describe("GET /account/export", () => {
  const G = "chirp.graph.v1.GraphService";
  const T = "chirp.tweet.v1.TweetService";
  const exportOf = (token?: string) => fetch(`${system.mesh.gatewayUrl}/account/export`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

  it("gives the caller's profile, tweets, reposts, likes, follows, blocks, mutes and media as JSON, and only theirs", async () => {
    const [fay, gus, hal, ivy] = [await signUp(), await signUp(), await signUp(), await signUp()];
    const png = PNG.sync.write({ width: 4, height: 4, data: Buffer.alloc(64, 200) } as Parameters<typeof PNG.sync.write>[0]);
    const upload = await fetch(`${system.mesh.gatewayUrl}/media`, { method: "POST", body: png, headers: { "content-type": "image/png", authorization: `Bearer ${fay.token}` } });
    const mediaId = ((await upload.json()) as { id: string }).id;
    const first = (await ok<{ tweet: { id: string } }>(`${T}/PostTweet`, { text: "my first #export", mediaIds: [mediaId] }, fay.token)).tweet;
    const gusTweet = (await ok<{ tweet: { id: string } }>(`${T}/PostTweet`, { text: "gus says hi" }, gus.token)).tweet;
    await ok(`${T}/PostTweet`, { text: "a reply", replyToTweetId: gusTweet.id }, fay.token);
    await ok(`${T}/LikeTweet`, { tweetId: gusTweet.id }, fay.token);
    await ok(`${T}/Repost`, { tweetId: gusTweet.id }, fay.token);
    await ok(`${G}/Follow`, { userId: String(gus.id) }, fay.token);
    await ok(`${G}/Follow`, { userId: String(fay.id) }, gus.token);
    await ok(`${G}/Block`, { userId: String(hal.id) }, fay.token);
    await ok(`${G}/Mute`, { userId: String(ivy.id) }, fay.token);

    const res = await exportOf(fay.token);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toMatch(/attachment/);
    const data = (await res.json()) as Record<string, any>;
    expect(data["profile"]).toMatchObject({ id: String(fay.id), handle: fay.handle, email: `${fay.handle}@example.com` });
    expect(data["tweets"].map((t: { text: string }) => t.text).sort()).toEqual(["a reply", "my first #export"]);
    expect(data["reposts"].map((r: { tweet: { id: string } }) => r.tweet.id)).toEqual([gusTweet.id]);
    expect(data["likes"].map((t: { id: string }) => t.id)).toEqual([gusTweet.id]);
    expect([data["following"], data["followers"]].map((us: Array<{ id: string }>) => us.map((u) => u.id))).toEqual([[String(gus.id)], [String(gus.id)]]);
    expect([data["blocked"], data["muted"]].map((us: Array<{ id: string }>) => us.map((u) => u.id))).toEqual([[String(hal.id)], [String(ivy.id)]]);
    expect(data["media"]).toEqual([{ id: mediaId, tweetId: first.id, url: `/media/${mediaId}` }]);

    // Gus's export is his own: nothing of Fay's private lists, no email of hers.
    const his = (await (await exportOf(gus.token)).json()) as Record<string, any>;
    expect(his["profile"]["id"]).toBe(String(gus.id));
    expect([his["blocked"], his["muted"], his["likes"]]).toEqual([[], [], []]);
    expect(JSON.stringify(his)).not.toContain(`${fay.handle}@example.com`);
  });

  it("needs a valid token of a live session", async () => {
    expect((await exportOf()).status).toBe(401);
    expect((await exportOf("chirp1.bogus.token")).status).toBe(401);
    const jan = await signUp();
    await ok(`${U}/LogOut`, {}, jan.token);
    await refusedWithin1s(jan.token, "the logged-out token refused");
    expect((await exportOf(jan.token)).status).toBe(401);
  });
});

