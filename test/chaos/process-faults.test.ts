// Fault tests of the mesh's own processes (issue 12 item 1), with two
// instances of the tweet and timeline services (every caller lists both, as
// docker-compose.yml does): a timeline process is killed with SIGKILL while
// it fans a burst of tweets out to fifty followers, then started
// again; one of the two tweet processes is killed under load. After each:
// every acknowledged write is there, every timeline is complete, nothing is
// listed twice, and the error window is printed (support/workload.ts).
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Mesh } from "../../devcluster/launch.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import { vouchingInterceptor } from "../../lib/rpc/vouching-interceptor.js";
import { generateMeshSecret } from "../../lib/auth/assertion.js";

/** The mesh secret the system is launched with: direct calls to a service as a user carry an assertion made with it. */
const MESH_SECRET = generateMeshSecret();
import { entryMember } from "../../services/timeline/entries.js";
import { KEYS } from "../../services/timeline/lists.js";
import { gatewayApi, type Account } from "../e2e/support/api.js";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { meshLog } from "./support/mesh-log.js";
import { callSafely, createWorkload, inParallel, type ApiTweet, type Workload } from "./support/workload.js";

/** Followers of the author whose burst is being fanned out when the worker dies. */
const FANS = 50;
const BURST = 40;
/** Acknowledged posts before each fault and after it (the workload's warm-up and recovery). */
const ACKS = { warmAcks: 10, recoveredAcks: 10 };

let system: TestSystem;
let mesh: Mesh;
let redis: Redis;
let workload: Workload;
const api = gatewayApi(() => mesh.gatewayUrl, "cp");
const log = meshLog();

beforeAll(async () => {
  // A tenant of the run's shared cluster: these faults are of the mesh's own processes, not of servers.
  system = await startSystem({
    meshSecret: MESH_SECRET,
    mode: "mesh",
    router: false,
    env: {
      // A killed fan-out worker's event is handed out again after 3 s, not the default 30 s.
      CHIRP_EVENTS_ACK_WAIT_MS: "3000",
      // One list per pipeline: fanning one tweet out to FANS lists takes FANS round trips, long enough to die in the middle of
      // (with half the sign-ups of 200 fans in pipelines of two).
      CHIRP_TIMELINE_FANOUT_BATCH: "1",
    },
    stdio: log.open(),
    instances: { tweet: 2, timeline: 2 },
  });
  mesh = system.mesh;
  redis = new Redis(system.infra.redisUrl, { maxRetriesPerRequest: 1 });
  workload = await createWorkload({ api, users: 12, followsEach: 4 });
}, 180_000);

afterAll(async () => {
  redis?.disconnect();
  await system?.stop();
  log.remove();
});

const T = "chirp.tweet.v1.TweetService";
const TL = "chirp.timeline.v1.TimelineService";

/** How many of `tweets` are in each fan's Redis home list, summed. */
async function deliveries(author: Account, fans: readonly Account[], tweets: readonly ApiTweet[]): Promise<number> {
  const p = redis.pipeline();
  for (const f of fans) for (const t of tweets) p.zscore(KEYS.home(f.id), entryMember({ id: BigInt(t.id), authorId: author.id }));
  return ((await p.exec()) ?? []).filter(([err, score]) => err === null && score !== null).length;
}

describe("faults of the mesh's processes, under load", () => {
  it("a timeline process killed mid fan-out and started again: every follower's list gets every tweet, once", { timeout: 300_000 }, async () => {
    log.showOnFailure();
    const star = await api.signUp();
    const fans = await api.signUpMany(FANS);
    await inParallel(fans, 16, async (f) => {
      await api.ok("chirp.graph.v1.GraphService/Follow", { userId: String(star.id) }, f.token);
      // A list that exists is a list fan-out writes into (a missing one is built on the next read).
      await api.ok(`${TL}/GetHomeTimeline`, { pageSize: 1 }, f.token);
    });

    const burst: ApiTweet[] = [];
    let atKill = 0;
    const report = await workload.run(
      "timeline process killed mid fan-out",
      async () => {
        const posting = inParallel(
          Array.from({ length: BURST }, (_, i) => i),
          4,
          async (i) => {
            burst.push((await api.ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, { text: `burst #${i}` }, star.token)).tweet);
          },
        );
        // The first tweets of the burst are reaching the fans' lists: the fan-out is under way.
        await eventually("fan-out under way", async () => burst.length > 0 && (await deliveries(star, fans, burst)) > 0, { timeoutMs: 30_000, intervalMs: 5 });
        await mesh.killService("timeline", 0, "SIGKILL");
        // Counted at the kill: once the posting ends, the other timeline process may have
        // delivered everything (its share, and after the ack wait the killed one's too).
        atKill = await deliveries(star, fans, [...burst]);
        await posting;
        await mesh.restartService("timeline", 0);
      },
      // Events the killed process held unacked come back after the consumer's ack wait (3 s here).
      { ...ACKS, consistentWithinMs: 120_000 },
    );
    expect(report.acked).toBeGreaterThan(0);
    // Killed before the burst was everywhere (else this test killed nothing mid-batch).
    expect(atKill).toBeLessThan(FANS * BURST);

    // Every fan's home timeline is the star's tweets, each once; so are their Redis lists.
    const started = performance.now();
    await eventually("every fan has every tweet of the burst in their list", async () => (await deliveries(star, fans, burst)) === FANS * BURST, { timeoutMs: 120_000, intervalMs: 250 });
    const want = burst.map((t) => t.id).sort();
    const wrong: string[] = [];
    await inParallel(fans, 16, async (f) => {
      const answer = await callSafely<{ tweets: ApiTweet[] }>(api, `${TL}/GetHomeTimeline`, { pageSize: 100 }, f.token);
      const ids = answer.code === undefined ? answer.body.tweets.map((t) => t.id).sort() : [answer.code];
      if (JSON.stringify(ids) !== JSON.stringify(want)) wrong.push(`${f.handle}: ${ids.length} entries`);
    });
    expect(wrong).toEqual([]);
    console.log(
      `[chaos] fan-out: ${atKill} of ${FANS * BURST} deliveries of the burst done when the process was killed; ` +
        `all done ${((performance.now() - started) / 1000 + report.consistentMs / 1000).toFixed(1)} s after the load stopped`,
    );
  });

  it("one of two tweet processes killed: calls go to the other; nothing acknowledged is lost or written twice", { timeout: 180_000 }, async () => {
    log.showOnFailure();
    // Not one of the workload's users: their timelines hold only what the workload posted.
    const outsider = await api.signUp();
    await workload.run("one of two tweet processes killed", async (load) => {
      const killedAt = performance.now();
      await mesh.killService("tweet", 1, "SIGKILL");
      await load.acks(20);
      const restartAt = performance.now();
      await mesh.restartService("tweet", 1);
      console.log(`[chaos] tweet[1] restarted at +${((restartAt - killedAt) / 1000).toFixed(1)} s, ready at +${((performance.now() - killedAt) / 1000).toFixed(1)} s`);
      // Ready means ready: the restarted process takes a post at once (called directly, not through the balancer).
      const direct = createClient(TweetService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${mesh.instances.tweet[1]!.grpcPort}`, interceptors: [vouchingInterceptor(MESH_SECRET)] }));
      const first = await direct.postTweet({ text: "first post on the restarted process" }, { headers: { [CALLER_ID_HEADER]: String(outsider.id) } }).then(
        () => "ok",
        (err: unknown) => `${Code[ConnectError.from(err).code]}: ${ConnectError.from(err).rawMessage}`,
      );
      expect(first).toBe("ok");
    }, ACKS);
  });
});
