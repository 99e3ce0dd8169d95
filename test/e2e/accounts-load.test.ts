// Sign-up under load with small connection pools: a sign-up touches up to
// three MySQL members (the handle's claim, the email's claim, the user's
// shard). If it held a pooled connection on one while waiting for another,
// concurrent sign-ups would starve each other (every connection of member A
// held by sign-ups waiting for member B and the other way round) until the
// pool's acquire timeout: Unavailable. Its own cluster and mesh, with
// CHIRP_DB_POOL_SIZE=2 per member.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Mesh } from "../../devcluster/launch.js";
import { ShardMap } from "../../lib/shard/keyrange.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { binaryMd5Vindex } from "../../lib/shard/vindex.js";
import { startSystem, type TestSystem } from "../support/system.js";

const POOL_SIZE = 2;

let system: TestSystem;
let mesh: Mesh;
let db: ShardRouter;

beforeAll(async () => {
  system = await startSystem({ env: { CHIRP_DB_POOL_SIZE: String(POOL_SIZE) } });
  ({ mesh, router: db } = system);
});

afterAll(async () => {
  await system?.stop();
});

interface Reply {
  status: number;
  json: { code?: string; message?: string; user?: { id: string; handle: string }; token?: string };
}

async function call(method: string, body: unknown): Promise<Reply> {
  const res = await fetch(`${mesh.gatewayUrl}/chirp.user.v1.UserService/${method}`, {
    method: "POST",
    // Argon2 makes 64 sign-ups at once a few seconds of CPU; on a 2-core
    // machine shared with other test files that can pass the gateway's default
    // 10 s deadline, so these calls give their own (Connect's timeout header).
    headers: { "content-type": "application/json", "connect-timeout-ms": "60000" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Reply["json"] };
}

/** The replica set holding a claim (handles and emails are both placed by binary_md5 of the lower-cased value). */
function claimReplicaSet(value: string): string {
  return new ShardMap(db.shards()).shardFor(binaryMd5Vindex(value.toLowerCase())).replicaSet;
}

/**
 * `count` handles `<prefix><n>` (n from 0) whose claim lands on a replica set
 * that `pick` accepts (given n and the replica set), and emails chosen the
 * same way against the handle's replica set.
 */
function accounts(
  prefix: string,
  count: number,
  emailOn: (handleSet: string, n: number) => (emailSet: string) => boolean,
): Array<{ handle: string; email: string; displayName: string; password: string }> {
  const out: Array<{ handle: string; email: string; displayName: string; password: string }> = [];
  for (let n = 0; out.length < count; n++) {
    const handle = `${prefix}${n}`;
    const wantEmail = emailOn(claimReplicaSet(handle), out.length);
    let email = "";
    for (let k = 0; ; k++) {
      email = `${handle}.${k}@example.com`;
      if (wantEmail(claimReplicaSet(email))) break;
    }
    out.push({ handle, email, displayName: handle, password: "correct horse battery" });
  }
  return out;
}

async function handleClaim(handle: string): Promise<string | undefined> {
  const key = handle.toLowerCase();
  const rows = await db.primaryForHandle(key).query<{ user_id: string }>("SELECT user_id FROM chirp.user_handles WHERE handle_lower = ?", [key]);
  return rows[0]?.user_id;
}

async function expectAllSignedUpAndLoggedIn(list: ReturnType<typeof accounts>, replies: Reply[]): Promise<void> {
  const failures = replies.flatMap((r, i) => (r.json.code === undefined ? [] : [`${list[i]!.handle}: ${r.json.code} ${r.json.message ?? ""}`]));
  expect(failures).toEqual([]);
  for (const [i, d] of list.entries()) {
    const id = replies[i]!.json.user!.id;
    expect(await handleClaim(d.handle)).toBe(id);
    const login = await call("LogIn", { handle: d.handle, password: d.password });
    expect(login.json.code, `${d.handle}: ${JSON.stringify(login.json)}`).toBeUndefined();
    expect(login.json.user?.id).toBe(id);
  }
}

describe(`SignUp with ${POOL_SIZE} connections per member`, () => {
  it("lets 64 concurrent sign-ups whose handle and email claims sit on different members all succeed, and each log in", { timeout: 180_000 }, async () => {
    // Half with the handle on one member and the email on the other, half the
    // other way round: the pattern that starves pools when a sign-up holds one
    // member's connection while it waits for another's.
    const list = accounts("load", 64, (handleSet) => (emailSet) => emailSet !== handleSet);
    expect(new Set(list.map((d) => claimReplicaSet(d.handle))).size).toBe(2);
    const replies = await Promise.all(list.map((d) => call("SignUp", d)));
    await expectAllSignedUpAndLoggedIn(list, replies);
  });

  it("signs up accounts whose handle, email and user may all sit on one member, one after another", { timeout: 180_000 }, async () => {
    // One sign-up alone must never need more than one connection of a member.
    const list = accounts("same", 12, (handleSet) => (emailSet) => emailSet === handleSet);
    const replies: Reply[] = [];
    for (const d of list) replies.push(await call("SignUp", d));
    await expectAllSignedUpAndLoggedIn(list, replies);
  });
});
