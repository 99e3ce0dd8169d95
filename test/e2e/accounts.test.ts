// Accounts and sessions end to end: a private cluster, the whole mesh and the
// gateway, called the way a browser or curl does (Connect JSON over HTTP/1.1).
// The database is read back through the shard router with the application
// account, to check what was (and was not) stored.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { createTokenSigner, generateTokenKeys } from "../../lib/auth/token.js";
import type { Mesh } from "../../devcluster/launch.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import { vouchingInterceptor } from "../../lib/rpc/vouching-interceptor.js";
import { generateMeshSecret } from "../../lib/auth/assertion.js";

/** The mesh secret the system is launched with: direct calls to a service as a user carry an assertion made with it. */
const MESH_SECRET = generateMeshSecret();
import { ShardMap } from "../../lib/shard/keyrange.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { binaryMd5Vindex } from "../../lib/shard/vindex.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
let mesh: Mesh;
let db: ShardRouter;
const keys = generateTokenKeys();
const signer = createTokenSigner(keys.privateKey);

beforeAll(async () => {
  system = await startSystem({ meshSecret: MESH_SECRET, tokenKeys: { privateKey: keys.privateKey, publicKeys: [keys.publicKey] } });
  ({ mesh, router: db } = system);
});

afterAll(async () => {
  await system?.stop();
});

interface UserJson {
  id: string;
  handle: string;
  displayName: string;
  bio: string;
  createTime: string;
  followerCount: number;
  followingCount: number;
  tweetCount: number;
  email: string;
}
interface Reply {
  status: number;
  json: { code?: string; message?: string; user?: UserJson; token?: string };
}

async function call(method: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${mesh.gatewayUrl}/chirp.user.v1.UserService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Reply["json"] };
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

let serial = 0;
/** A fresh account's details; `name` keeps the handle readable (handles are at most 15 characters). */
function details(name: string, extra: Record<string, string> = {}) {
  serial++;
  const handle = `${name}${serial}`.slice(0, 15);
  return { handle, displayName: `${name} ${serial}`, email: `${handle}@example.com`, password: "correct horse battery", ...extra };
}

async function signUp(d: ReturnType<typeof details>): Promise<{ user: UserJson; token: string }> {
  const res = await call("SignUp", d);
  expect(res.json.code, JSON.stringify(res.json)).toBeUndefined();
  return { user: res.json.user!, token: res.json.token! };
}

// --- reading the database back -------------------------------------------

async function userRow(id: string) {
  const rows = await db
    .primaryForUser(id)
    .query<{ handle: string; email: string; password_hash: string; birth_date: string | null; last_login_time: Date | null; bio: string; display_name: string }>(
      "SELECT handle, email, password_hash, DATE_FORMAT(birth_date, '%Y-%m-%d') AS birth_date, last_login_time, bio, display_name FROM chirp.users WHERE id = ?",
      [id],
    );
  return rows[0];
}

/** Users whose handle equals `handle` without regard to case, on every shard. */
async function usersWithHandle(handle: string): Promise<string[]> {
  const all = await Promise.all(
    db.shards().map((s) => db.primary(s).query<{ id: string }>("SELECT id FROM chirp.users WHERE LOWER(handle) = LOWER(?)", [handle])),
  );
  return all.flat().map((r) => String(r.id));
}

async function handleClaim(handle: string): Promise<string | undefined> {
  const key = handle.toLowerCase();
  const rows = await db.primaryForHandle(key).query<{ user_id: string }>("SELECT user_id FROM chirp.user_handles WHERE handle_lower = ?", [key]);
  return rows[0]?.user_id;
}

async function emailClaim(email: string): Promise<string | undefined> {
  const key = email.toLowerCase();
  const all = await Promise.all(
    db.shards().map((s) => db.primary(s).query<{ user_id: string }>("SELECT user_id FROM chirp.user_emails WHERE email_lower = ?", [key])),
  );
  const found = all.flat();
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.user_id;
}

async function outboxSubjects(userId: string): Promise<string[]> {
  const rows = await db.primaryForUser(userId).query<{ subject: string }>("SELECT subject FROM chirp.outbox WHERE user_id = ? ORDER BY event_id", [userId]);
  return rows.map((r) => r.subject);
}

// --- the tests -------------------------------------------------------------

describe("SignUp", () => {
  it("creates the account, its handle and email claims and a UserCreated event, and returns the user with email and a token", async () => {
    const d = details("Alice", { birthDate: "1990-04-01" });
    const { user, token } = await signUp(d);
    expect(user).toMatchObject({ handle: d.handle, displayName: d.displayName, bio: "", email: d.email, followerCount: 0, followingCount: 0, tweetCount: 0 });
    expect(user.id).toMatch(/^[1-9][0-9]*$/);
    expect(Date.parse(user.createTime)).toBeGreaterThan(Date.now() - 60_000);
    expect(token).toMatch(/^chirp1\./);

    const row = await userRow(user.id);
    expect(row).toMatchObject({ handle: d.handle, email: d.email, birth_date: "1990-04-01", last_login_time: null });
    expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    expect(row!.password_hash).not.toContain(d.password);
    expect(await handleClaim(d.handle)).toBe(user.id);
    expect(await emailClaim(d.email)).toBe(user.id);
    expect(await outboxSubjects(user.id)).toEqual(["chirp.user.v1.user_created"]);
  });

  it("stores no birth date when none is given", async () => {
    const { user } = await signUp(details("nodob"));
    expect((await userRow(user.id))?.birth_date).toBeNull();
  });

  it("lets exactly one of concurrent sign-ups for the same handle in different case win", async () => {
    const base = details("Casey");
    const variants = [base.handle, base.handle.toLowerCase(), base.handle.toUpperCase(), `c${base.handle.slice(1).toUpperCase()}`];
    const results = await Promise.all(variants.map((handle, i) => call("SignUp", { ...base, handle, email: `casey${serial}-${i}@example.com` })));
    const codes = results.map((r) => r.json.code ?? "ok").sort();
    expect(codes).toEqual(["already_exists", "already_exists", "already_exists", "ok"]);
    const winner = results.find((r) => r.json.code === undefined)!.json.user!;
    expect(await usersWithHandle(base.handle)).toEqual([winner.id]);
    expect(await handleClaim(base.handle)).toBe(winner.id);
    // The losers' emails were claimed by nobody (or given back).
    for (let i = 0; i < variants.length; i++) {
      const email = `casey${serial}-${i}@example.com`;
      if (email !== winner.email) expect(await emailClaim(email)).toBeUndefined();
    }
  });

  it("refuses a taken handle in any case, and a taken email in any case, with distinct messages", async () => {
    const first = await signUp(details("Dana"));
    const sameHandle = await call("SignUp", { ...details("x"), handle: first.user.handle.toUpperCase() });
    expect(sameHandle.json.code).toBe("already_exists");
    const other = details("Erin");
    const sameEmail = await call("SignUp", { ...other, email: first.user.email.toUpperCase() });
    expect(sameEmail.json.code).toBe("already_exists");
    expect(sameEmail.json.message).not.toBe(sameHandle.json.message);
    // The handle that sign-up claimed before its email was refused is free again.
    expect(await handleClaim(other.handle)).toBeUndefined();
    await signUp(other);
  });

  it.each([
    ["a handle with a space", { handle: "no spaces" }],
    ["a handle of 16 characters", { handle: "a".repeat(16) }],
    ["an empty handle", { handle: "" }],
    ["a malformed email", { email: "not-an-email" }],
    ["a password under 8 characters", { password: "short" }],
    ["a birth date that is no calendar date", { birthDate: "2001-02-29" }],
    ["a birth date in the future", { birthDate: "2999-01-01" }],
    ["a birth date in another format", { birthDate: "1/2/2000" }],
  ])("refuses %s with InvalidArgument and creates nothing", async (_what, bad) => {
    const d = { ...details("Bad"), ...bad };
    const res = await call("SignUp", d);
    expect(res.status).toBe(400);
    expect(res.json.code).toBe("invalid_argument");
    if (/^[A-Za-z0-9_]{1,15}$/.test(d.handle)) expect(await handleClaim(d.handle)).toBeUndefined();
    expect(await emailClaim(d.email)).toBeUndefined();
    if (d.handle !== "") expect(await usersWithHandle(d.handle)).toEqual([]);
  });

  it("takes over a claim whose sign-up died before writing the user, once the grace period is over", async () => {
    // A crash between the claim and the user insert leaves these behind.
    const ghost = details("Ghost");
    const oldEnough = "NOW(6) - INTERVAL 1 MINUTE";
    await db.primaryForHandle(ghost.handle.toLowerCase()).execute(
      `INSERT INTO chirp.user_handles (handle_lower, user_id, create_time) VALUES (?, ?, ${oldEnough})`,
      [ghost.handle.toLowerCase(), "424242"],
    );
    const { user } = await signUp(ghost);
    expect(await handleClaim(ghost.handle)).toBe(user.id);

    // The same for an email claim.
    const lost = details("Lost");
    await insertEmailClaim(lost.email, "434343", oldEnough);
    const second = await signUp(lost);
    expect(await emailClaim(lost.email)).toBe(second.user.id);
  });

  it("does not take over an old claim whose user row exists", async () => {
    const owner = await signUp(details("Olde"));
    const key = owner.user.handle.toLowerCase();
    await db.primaryForHandle(key).execute("UPDATE chirp.user_handles SET create_time = NOW(6) - INTERVAL 1 HOUR WHERE handle_lower = ?", [key]);
    const res = await call("SignUp", { ...details("Olde2"), handle: owner.user.handle.toUpperCase() });
    expect(res.json.code).toBe("already_exists");
    expect(res.json.message).toBe("handle already taken");
    expect(await handleClaim(owner.user.handle)).toBe(owner.user.id);
  });

  it("does not take over a claim younger than the grace period (its sign-up may still be running)", async () => {
    const phantom = details("Phantom");
    await db.primaryForHandle(phantom.handle.toLowerCase()).execute("INSERT INTO chirp.user_handles (handle_lower, user_id) VALUES (?, ?)", [
      phantom.handle.toLowerCase(),
      "454545",
    ]);
    const res = await call("SignUp", phantom);
    expect(res.json.code).toBe("already_exists");
    expect(await handleClaim(phantom.handle)).toBe("454545");
    expect(await emailClaim(phantom.email)).toBeUndefined();
  });
});

/** Inserts an email claim on the email's shard (binary_md5 of the lower-cased address), as the service places it. */
async function insertEmailClaim(email: string, userId: string, createTime: string): Promise<void> {
  const key = email.toLowerCase();
  const shard = new ShardMap(db.shards()).shardFor(binaryMd5Vindex(key));
  await db.primary(shard).execute(`INSERT INTO chirp.user_emails (email_lower, user_id, create_time) VALUES (?, ?, ${createTime})`, [key, userId]);
}

describe("LogIn", () => {
  it("works right after sign-up, records the log-in time and returns the user with email and a working token", async () => {
    const d = details("Frank");
    const { user } = await signUp(d);
    const res = await call("LogIn", { handle: d.handle.toUpperCase(), password: d.password });
    expect(res.json.code).toBeUndefined();
    expect(res.json.user).toMatchObject({ id: user.id, email: d.email });
    const row = await userRow(user.id);
    expect(row?.last_login_time).toBeInstanceOf(Date);
    expect(Math.abs(row!.last_login_time!.getTime() - Date.now())).toBeLessThan(60_000);
    const updated = await call("UpdateProfile", { bio: "logged in" }, bearer(res.json.token!));
    expect(updated.json.user?.bio).toBe("logged in");
  });

  it("answers a wrong password and an unknown handle with the same code and message", async () => {
    const d = details("Grace");
    await signUp(d);
    const wrongPassword = await call("LogIn", { handle: d.handle, password: "not the password" });
    const unknownHandle = await call("LogIn", { handle: "nobody_here_x", password: d.password });
    expect(wrongPassword.json.code).toBe("unauthenticated");
    expect(unknownHandle.json.code).toBe("unauthenticated");
    expect(unknownHandle.json.message).toBe(wrongPassword.json.message);
    expect(wrongPassword.status).toBe(unknownHandle.status);
  });
});

describe("GetUser", () => {
  it("finds a user just created, by id and by handle in any case; NotFound otherwise", async () => {
    const { user } = await signUp(details("Heidi"));
    const byId = await call("GetUser", { userId: user.id });
    expect(byId.json.user?.handle).toBe(user.handle);
    const byHandle = await call("GetUser", { handle: user.handle.toLowerCase() });
    expect(byHandle.json.user?.id).toBe(user.id);
    expect((await call("GetUser", { userId: "999999999" })).json.code).toBe("not_found");
    expect((await call("GetUser", { handle: "nobody_here_y" })).json.code).toBe("not_found");
  });

  it("shows the email to its owner only", async () => {
    const ivan = await signUp(details("Ivan"));
    const judy = await signUp(details("Judy"));
    expect((await call("GetUser", { userId: ivan.user.id }, bearer(ivan.token))).json.user?.email).toBe(ivan.user.email);
    expect((await call("GetUser", { userId: ivan.user.id }, bearer(judy.token))).json.user?.email).toBe("");
    expect((await call("GetUser", { userId: ivan.user.id })).json.user?.email).toBe("");
    // A caller id sent by the client is never trusted.
    expect((await call("GetUser", { userId: ivan.user.id }, { [CALLER_ID_HEADER]: ivan.user.id })).json.user?.email).toBe("");
  });
});

describe("UpdateProfile", () => {
  it("needs a caller: anonymous or a client-sent caller id is Unauthenticated", async () => {
    const { user } = await signUp(details("Ken"));
    expect((await call("UpdateProfile", { bio: "x" })).json.code).toBe("unauthenticated");
    expect((await call("UpdateProfile", { bio: "x" }, { [CALLER_ID_HEADER]: user.id })).json.code).toBe("unauthenticated");
    expect((await userRow(user.id))?.bio).toBe("");
  });

  it("changes only the fields given, returns the user with email, and records a ProfileUpdated event", async () => {
    const d = details("Lena");
    const { user, token } = await signUp(d);
    const bioOnly = await call("UpdateProfile", { bio: "hello there" }, bearer(token));
    expect(bioOnly.json.user).toMatchObject({ id: user.id, displayName: d.displayName, bio: "hello there", email: d.email });
    const nameOnly = await call("UpdateProfile", { displayName: "Lena L" }, bearer(token));
    expect(nameOnly.json.user).toMatchObject({ displayName: "Lena L", bio: "hello there" });
    const cleared = await call("UpdateProfile", { bio: "" }, bearer(token));
    expect(cleared.json.user).toMatchObject({ displayName: "Lena L", bio: "" });
    expect(await userRow(user.id)).toMatchObject({ display_name: "Lena L", bio: "" });
    expect(await outboxSubjects(user.id)).toEqual([
      "chirp.user.v1.user_created",
      "chirp.user.v1.profile_updated",
      "chirp.user.v1.profile_updated",
      "chirp.user.v1.profile_updated",
    ]);
    // Nothing given: nothing changes, no event.
    const nothing = await call("UpdateProfile", {}, bearer(token));
    expect(nothing.json.user).toMatchObject({ displayName: "Lena L", bio: "" });
    expect(await outboxSubjects(user.id)).toHaveLength(4);
    expect((await call("UpdateProfile", { bio: "x".repeat(161) }, bearer(token))).json.code).toBe("invalid_argument");
  });
});

describe("gateway authentication", () => {
  it("refuses an expired, tampered, foreign or garbage token, even on an RPC that needs no caller", async () => {
    const { user, token } = await signUp(details("Mallory"));
    const expired = signer.sign(user.id, 60, new Date(Date.now() - 3600_000)).token;
    const [prefix, payload, sig] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const tampered = `${prefix}.${Buffer.from(JSON.stringify({ ...claims, sub: "1" })).toString("base64url")}.${sig}`;
    const foreign = createTokenSigner(generateTokenKeys().privateKey).sign(user.id, 3600).token;
    const bad = [
      bearer(expired),
      bearer(tampered),
      bearer(foreign),
      bearer("garbage"),
      { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` },
      { authorization: token },
    ];
    for (const headers of bad) {
      expect((await call("UpdateProfile", { bio: "pwned" }, headers)).json.code).toBe("unauthenticated");
      expect((await call("GetUser", { userId: user.id }, headers)).json.code).toBe("unauthenticated");
    }
    // Checked at the edge, before any service: the same for another service's RPC.
    const graph = await fetch(`${mesh.gatewayUrl}/chirp.graph.v1.GraphService/Follow`, {
      method: "POST",
      headers: { "content-type": "application/json", ...bearer("garbage") },
      body: JSON.stringify({ userId: user.id }),
    });
    expect(((await graph.json()) as { code: string }).code).toBe("unauthenticated");
    expect((await userRow(user.id))?.bio).toBe("");
    // The genuine token still works.
    expect((await call("UpdateProfile", { bio: "mine" }, bearer(token))).json.user?.bio).toBe("mine");
  });

  it("takes the caller from any token made with the configured key", async () => {
    const { user } = await signUp(details("Nina"));
    const own = signer.sign(user.id, 600).token;
    expect((await call("GetUser", { userId: user.id }, bearer(own))).json.user?.email).toBe(`${user.handle}@example.com`);
  });
});

describe("BatchGetUsers (inside the mesh)", () => {
  it("answers in request order, once per id, leaves out unknown ids and never shows an email", async () => {
    const a = await signUp(details("Olga"));
    const b = await signUp(details("Pete"));
    const c = await signUp(details("Quinn"));
    const client = createClient(UserService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${mesh.services.user.grpcPort}`, interceptors: [vouchingInterceptor(MESH_SECRET)] }));
    const ids = [c.user.id, a.user.id, "999999998", b.user.id, a.user.id].map(BigInt);
    const res = await client.batchGetUsers({ userIds: ids }, { headers: { [CALLER_ID_HEADER]: a.user.id } });
    expect(res.users.map((u) => String(u.id))).toEqual([c.user.id, a.user.id, b.user.id]);
    expect(res.users.map((u) => u.email)).toEqual(["", "", ""]);
    expect(res.users[0]?.handle).toBe(c.user.handle);

    // By handle, any case (a tweet's mentions): in request order after the ids, unknown handles left out, each user once.
    const byHandle = await client.batchGetUsers({ userIds: [BigInt(b.user.id)], handles: [c.user.handle.toUpperCase(), "nobody_here", a.user.handle, b.user.handle] });
    expect(byHandle.users.map((u) => String(u.id))).toEqual([b.user.id, c.user.id, a.user.id]);

    const tooMany = await client.batchGetUsers({ userIds: Array.from({ length: 101 }, (_, i) => BigInt(i + 1)) }).catch((e: unknown) => e);
    expect(ConnectError.from(tooMany).code).toBe(Code.InvalidArgument);
    const badHandle = await client.batchGetUsers({ handles: ["not a handle"] }).catch((e: unknown) => e);
    expect(ConnectError.from(badHandle).code).toBe(Code.InvalidArgument);
  });
});
