// Sessions' last activity written in batches (services/user/sessions.ts,
// touch): reports for sessions on every shard go out as one statement per
// shard, each row moves forward only, and an ended session is left alone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenSigner, generateTokenKeys } from "../../lib/auth/token.js";
import { createIdGenerator } from "../../lib/ids.js";
import { dbTimeFromMicros } from "../../lib/db/db-time.js";
import { createSessions, type Sessions } from "../../services/user/sessions.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
let sessions: Sessions;

beforeAll(async () => {
  system = await startSystem({ mesh: false });
  sessions = createSessions({
    router: system.router,
    ids: createIdGenerator(1013),
    tokens: createTokenSigner(generateTokenKeys().privateKey),
    tokenTtlSeconds: 3600,
    ended: () => Promise.reject(new Error("no bucket in this test")),
  });
});

afterAll(async () => {
  await system?.stop();
});

const T0 = Date.parse("2026-01-01T00:00:00Z");
const at = (ms: number): string => dbTimeFromMicros(BigInt(ms) * 1000n);

async function insert(userId: bigint, sessionId: bigint, ended: boolean): Promise<void> {
  await system.router
    .primaryForUser(userId)
    .execute(
      "INSERT INTO chirp.user_sessions (user_id, session_id, create_time, last_active_time, expire_time, end_time) VALUES (?, ?, ?, ?, ?, ?)",
      [userId, sessionId, at(T0), at(T0 + 10_000), at(T0 + 86_400_000), ended ? at(T0 + 20_000) : null],
    );
}

async function lastActive(userId: bigint, sessionId: bigint): Promise<number> {
  const rows = await system.router
    .primaryForUser(userId)
    .query<{ t: string }>("SELECT DATE_FORMAT(last_active_time, '%Y-%m-%dT%H:%i:%s.%fZ') AS t FROM chirp.user_sessions WHERE user_id = ? AND session_id = ?", [userId, sessionId]);
  return Date.parse(rows[0]!.t);
}

describe("session activity", () => {
  it("writes many sessions' reports on every shard in one call: forward only, ended sessions untouched", async () => {
    const users = Array.from({ length: 40 }, (_, i) => 9_000_000n + BigInt(i));
    expect(new Set(users.map((u) => system.router.shardForUser(u).name)).size).toBe(system.router.shards().length);
    for (const [i, u] of users.entries()) await insert(u, 1n, i % 10 === 9);
    const reports = users.map((userId, i) => ({ userId, sessionId: 1n, atMs: i % 5 === 0 ? T0 + 5_000 : T0 + 60_000 + i }));
    // A report of a session that does not exist changes nothing.
    await sessions.touch([...reports, { userId: 9_999_999n, sessionId: 7n, atMs: T0 + 60_000 }]);
    for (const [i, u] of users.entries()) {
      const want = i % 10 === 9 || i % 5 === 0 ? T0 + 10_000 : T0 + 60_000 + i;
      expect({ user: i, at: await lastActive(u, 1n) }).toEqual({ user: i, at: want });
    }
  });
});
