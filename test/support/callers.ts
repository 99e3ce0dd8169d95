// Issue 21, item 6, for the e2e files that start a system (security.test.ts:
// the single process; mesh.test.ts: the mesh): a service's gRPC port, reached
// directly, takes a caller only from the gateway's assertion.
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { expect } from "vitest";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { createAssertionSigner, generateMeshSecret, parseMeshSecrets } from "../../lib/auth/assertion.js";
import { ASSERTION_HEADER, CALLER_ID_HEADER, REQUEST_ID_HEADER, SESSION_ID_HEADER } from "../../lib/rpc/metadata.js";

const POST = "chirp.tweet.v1.TweetService/PostTweet";
const HOME = "chirp.timeline.v1.TimelineService/GetHomeTimeline";

/**
 * Direct calls to the tweet service at `tweetPort` as the user `userId`:
 * a forged caller header, and assertions that are foreign, expired, for
 * another method, moved to another request or used twice, are all
 * Unauthenticated and post nothing; the one good assertion posts once.
 * `meshSecret`: the secret the system was launched with.
 */
export async function expectOnlyVouchedCallers(gatewayUrl: string, tweetPort: number, meshSecret: string, userId: string, sessionId: string): Promise<void> {
  const tweets = createClient(TweetService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${tweetPort}` }));
  const signer = createAssertionSigner(parseMeshSecrets(meshSecret)[0]!);
  const foreign = createAssertionSigner(parseMeshSecrets(generateMeshSecret())[0]!);
  const codeOf = (headers: Record<string, string>, text: string): Promise<Code | "ok"> =>
    tweets.postTweet({ text }, { headers }).then(
      () => "ok" as const,
      (err: unknown) => ConnectError.from(err).code,
    );
  const vouched = (method: string, requestId: string, ttlMs = 60_000, nowMs = Date.now(), by = signer) => ({
    [REQUEST_ID_HEADER]: requestId,
    [ASSERTION_HEADER]: by.sign(userId, sessionId, method, requestId, ttlMs, nowMs),
  });
  const tag = randomUUID().slice(0, 8);
  const refused = {
    "a forged caller header": { [CALLER_ID_HEADER]: userId },
    "a forged caller and session": { [CALLER_ID_HEADER]: userId, [SESSION_ID_HEADER]: sessionId },
    "an assertion made with another secret": vouched(POST, `r-${tag}-1`, 60_000, Date.now(), foreign),
    "an expired assertion": vouched(POST, `r-${tag}-2`, 1000, Date.now() - 5000),
    "an assertion for another method": vouched(HOME, `r-${tag}-3`),
    "an assertion moved to another request": { ...vouched(POST, `r-${tag}-4`), [REQUEST_ID_HEADER]: `r-${tag}-5` },
    "a tampered assertion": { ...vouched(POST, `r-${tag}-6`), [ASSERTION_HEADER]: vouched(POST, `r-${tag}-6`)[ASSERTION_HEADER]!.replace(`;${userId};`, ";1;") },
  };
  for (const [what, headers] of Object.entries(refused)) {
    expect([what, await codeOf(headers, `forged ${tag} ${what}`)]).toEqual([what, Code.Unauthenticated]);
  }
  // The same assertion twice: the first posts, the replay is refused.
  const good = vouched(POST, `r-${tag}-7`);
  expect(await codeOf(good, `vouched ${tag}`)).toBe("ok");
  expect(await codeOf(good, `replayed ${tag}`)).toBe(Code.Unauthenticated);
  // Nothing but the vouched call posted: the author's timeline holds it alone.
  const res = await fetch(`${gatewayUrl}/chirp.timeline.v1.TimelineService/GetUserTimeline`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userId, pageSize: 50 }),
  });
  const { tweets: mine } = (await res.json()) as { tweets: Array<{ text: string }> };
  expect(mine.map((t) => t.text).filter((t) => t.includes(tag))).toEqual([`vouched ${tag}`]);
}
