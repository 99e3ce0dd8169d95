// OpenTelemetry traces end to end: the whole mesh as `npm start` runs it
// (private cluster, every service process, the gateway) exporting to an
// OTLP/HTTP receiver this test runs. One PostTweet through the gateway must
// come back as ONE trace that covers the gateway's server span, the tweet
// service's span (through the gateway's client span), the outbox relay's
// publish to JetStream, and the durable consumers that handle the event in
// other processes: the timeline fan-out and the search indexer.
//
// Nothing sleeps: every wait is on spans arriving at the receiver (the batch
// processors export every 50 ms here).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENTS } from "../../lib/events/subjects.js";
import type { Mesh } from "../../devcluster/launch.js";
import { REQUEST_ID_HEADER } from "../../lib/rpc/metadata.js";
import { SEARCH_INDEX_DURABLE } from "../../services/search/events.js";
import { FANOUT_DURABLE } from "../../services/timeline/fan-out.js";
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../support/otlp-receiver.js";
import { gatewayApi } from "./support/api.js";
import { startSystem, type TestSystem } from "../support/system.js";

let receiver: OtlpReceiver;
let system: TestSystem;
let mesh: Mesh;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  // The mesh: these traces cross process boundaries (gRPC metadata, NATS headers) and each process names its spans.
  system = await startSystem({
    mode: "mesh",
    env: {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "50",
    },
    router: false,
  });
  mesh = system.mesh;
});

afterAll(async () => {
  await system?.stop();
  await receiver?.close();
});

const { ok, signUp } = gatewayApi(() => mesh.gatewayUrl, "o");

/** The spans of one trace, once `want` finds what it looks for among them. */
function inTrace<T>(traceId: string, what: string, want: (spans: ReceivedSpan[]) => T | undefined): Promise<T> {
  return receiver.waitFor(what, (all) => want(all.filter((s) => s.traceId === traceId)));
}

describe("a tweet's trace", () => {
  it("follows PostTweet from the gateway through the tweet service, the outbox relay and NATS to the fan-out and the search indexer", async () => {
    const [author, follower] = [await signUp(), await signUp()];
    await ok("chirp.graph.v1.GraphService/Follow", { userId: String(author.id) }, follower.token);
    // The follower reads their home timeline, so it is an active list the fan-out writes to.
    await ok("chirp.timeline.v1.TimelineService/GetHomeTimeline", {}, follower.token);

    const res = await fetch(`${mesh.gatewayUrl}/chirp.tweet.v1.TweetService/PostTweet`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${author.token}` },
      body: JSON.stringify({ text: "traced all the way #otel" }),
    });
    expect(res.status).toBe(200);
    const tweet = ((await res.json()) as { tweet: { id: string } }).tweet;
    const requestId = res.headers.get(REQUEST_ID_HEADER);
    expect(requestId).toBeTruthy();

    // The gateway's span is the root; its request id names the trace.
    const root = await receiver.waitFor("gateway PostTweet span", (all) =>
      all.find((s) => s.service === "chirp-gateway" && s.kind === SPAN_KIND.server && s.attributes["chirp.request_id"] === requestId),
    );
    expect(root).toMatchObject({ name: "chirp.tweet.v1.TweetService/PostTweet", parentSpanId: "" });
    expect(root.attributes).toMatchObject({ "rpc.system.name": "connectrpc", "rpc.status_code": "OK", "enduser.id": String(author.id) });

    const subject = EVENTS.tweetCreated.subject;
    const spans = await inTrace(root.traceId, "the whole PostTweet trace", (t) => {
      const consumers = t.filter((s) => s.kind === SPAN_KIND.consumer && s.attributes["messaging.destination.name"] === subject);
      const fanOut = consumers.find((s) => s.attributes["messaging.consumer.group.name"] === FANOUT_DURABLE);
      const indexer = consumers.find((s) => s.attributes["messaging.consumer.group.name"] === SEARCH_INDEX_DURABLE);
      // Each process exports its spans in batches of its own: the tweet service's server and publish spans
      // may arrive after the consumers' on a busy machine, so the trace is whole only once they are here too.
      const tweetServer = t.some((s) => s.service === "chirp-tweet" && s.kind === SPAN_KIND.server && s.name === "chirp.tweet.v1.TweetService/PostTweet");
      const published = t.some((s) => s.kind === SPAN_KIND.producer && s.attributes["messaging.destination.name"] === subject);
      const gatewayClient = t.some((s) => s.service === "chirp-gateway" && s.kind === SPAN_KIND.client);
      return fanOut !== undefined && indexer !== undefined && tweetServer && published && gatewayClient ? { t, fanOut, indexer } : undefined;
    });
    const byId = new Map(spans.t.map((s) => [s.spanId, s]));
    const parentOf = (s: ReceivedSpan): ReceivedSpan => {
      const parent = byId.get(s.parentSpanId);
      if (parent === undefined) throw new Error(`the parent of ${s.service}:${s.name} did not arrive`);
      return parent;
    };
    const one = (pred: (s: ReceivedSpan) => boolean, what: string): ReceivedSpan => {
      const found = spans.t.filter(pred);
      expect(found, what).toHaveLength(1);
      return found[0]!;
    };

    // gateway server -> gateway client -> tweet server: one mesh hop, context in gRPC metadata.
    const gatewayClient = one((s) => s.service === "chirp-gateway" && s.kind === SPAN_KIND.client, "the gateway's client span");
    expect(parentOf(gatewayClient)).toBe(byId.get(root.spanId));
    const tweetServer = one((s) => s.service === "chirp-tweet" && s.kind === SPAN_KIND.server && s.name === "chirp.tweet.v1.TweetService/PostTweet", "the tweet service's span");
    expect(parentOf(tweetServer)).toBe(gatewayClient);
    expect(tweetServer.attributes).toMatchObject({ "rpc.system.name": "grpc", "chirp.request_id": requestId, "enduser.id": String(author.id) });

    // The tweet's statements on its author's shard, inside the tweet service's span.
    const statements = spans.t.filter((s) => s.service === "chirp-tweet" && s.attributes["db.system.name"] === "mysql");
    expect(statements.length).toBeGreaterThan(0);
    expect(statements.some((s) => String(s.attributes["db.query.text"]).includes("chirp.outbox"))).toBe(true);
    for (const s of statements) expect(s.attributes).toMatchObject({ "chirp.shard": expect.any(String), "chirp.db.role": expect.stringMatching(/^(primary|replica)$/) });

    // The relay's publish: a child of the span that wrote the outbox row (the row kept its context).
    const publish = one((s) => s.kind === SPAN_KIND.producer && s.attributes["messaging.destination.name"] === subject, "the relay's publish span");
    expect(publish).toMatchObject({ service: "chirp-tweet", name: `publish ${subject}` });
    expect(parentOf(publish)).toBe(tweetServer);
    expect(publish.attributes).toMatchObject({ "messaging.system": "nats", "chirp.request_id": requestId, "chirp.messaging.outcome": "stored" });
    const eventId = publish.attributes["messaging.message.id"];
    expect(eventId).toEqual(expect.any(String));

    // Across NATS: each durable's span is a child of the publish, in its own process.
    for (const [consumer, service] of [
      [spans.fanOut, "chirp-timeline"],
      [spans.indexer, "chirp-search"],
    ] as const) {
      expect(consumer).toMatchObject({ service, name: `process ${subject}` });
      expect(parentOf(consumer)).toBe(publish);
      expect(consumer.attributes).toMatchObject({ "messaging.message.id": eventId, "chirp.request_id": requestId, "chirp.messaging.outcome": "ok" });
    }

    // Whatever the consumers did over the mesh or on the shards is inside their spans too.
    const descendsFrom = (s: ReceivedSpan, ancestor: ReceivedSpan): boolean => {
      for (let p = byId.get(s.parentSpanId); p !== undefined; p = byId.get(p.parentSpanId)) if (p === ancestor) return true;
      return false;
    };
    // (The fan-out at least asks the graph service for the author's followers.)
    const fanOutWork = spans.t.filter((x) => x.service === "chirp-timeline" && x !== spans.fanOut);
    expect(fanOutWork.length).toBeGreaterThan(0);
    for (const s of fanOutWork) expect(descendsFrom(s, spans.fanOut)).toBe(true);

    // And the tweet reached the follower's home timeline: the traced path is the real one.
    const home = await ok<{ tweets?: Array<{ id: string }> }>("chirp.timeline.v1.TimelineService/GetHomeTimeline", {}, follower.token);
    expect(home.tweets?.map((t) => t.id)).toContain(tweet.id);
  });

  it("starts a new trace for every public call, and a client's traceparent is not continued", async () => {
    const clientTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const res = await fetch(`${mesh.gatewayUrl}/chirp.user.v1.UserService/GetUser`, {
      method: "POST",
      headers: { "content-type": "application/json", traceparent: `00-${clientTraceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ handle: "nobody_here" }),
    });
    expect(res.status).toBe(404);
    const requestId = res.headers.get(REQUEST_ID_HEADER);
    const root = await receiver.waitFor("gateway GetUser span", (all) =>
      all.find((s) => s.service === "chirp-gateway" && s.kind === SPAN_KIND.server && s.attributes["chirp.request_id"] === requestId),
    );
    expect(root.traceId).not.toBe(clientTraceId);
    expect(root.parentSpanId).toBe("");
    // NotFound is an answer, not a fault: the code is recorded, the server span is not an error.
    expect(root.attributes).toMatchObject({ "rpc.status_code": "NOT_FOUND", "error.type": "not_found" });
    expect(root.statusCode).not.toBe(2);
    const callee = await inTrace(root.traceId, "the user service's GetUser span", (t) => t.find((s) => s.service === "chirp-user" && s.kind === SPAN_KIND.server));
    expect(callee.attributes["rpc.status_code"]).toBe("NOT_FOUND");
  });
});
