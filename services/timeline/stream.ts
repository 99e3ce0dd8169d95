// StreamEvents: live events routed to the callers connected to this process.
//
// While any stream is open, the process holds one core NATS subscription per
// event domain it needs (chirp.tweet.v1.*, chirp.graph.v1.*, and the live
// copy of each new notification the notification service publishes once it
// has committed, LIVE_EVENTS.notificationCreated), not a durable consumer:
// delivery is live only, and every timeline instance with streams sees every
// event, routing it to its own streams. With
// no stream open it holds none, and is sent no live events at all (they were
// four deliveries per post with mentions, decoded to be dropped). Per
// connected user it keeps whom they follow (read from the
// graph when their first stream opens, then kept by their follow/unfollow
// events), indexed by followee, so a new tweet finds its connected readers
// without looking at anyone else. Each stream has a bounded queue; a client
// that lets it fill is cut off (ResourceExhausted) instead of growing memory.
import { create } from "@bufbuild/protobuf";
import { timestampNow, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { NotificationKind, NotificationSchema } from "../../gen/chirp/notification/v1/notification_pb.js";
import {
  StreamEventsResponse_FollowSchema,
  StreamEventsResponse_HomeTweetSchema,
  StreamEventsResponse_KeepaliveSchema,
  StreamEventsResponse_LikeSchema,
  StreamEventsResponse_MentionSchema,
  StreamEventsResponseSchema,
  type StreamEventsResponse,
} from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import type { Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import type { User } from "../../gen/chirp/user/v1/user_pb.js";
import type { EventBus } from "../../lib/events/bus.js";
import { EVENT_ID_HEADER } from "../../lib/events/headers.js";
import { sleep } from "../../lib/events/sleep.js";
import { EVENTS, LIVE_EVENTS } from "../../lib/events/subjects.js";
import type { Logger } from "../../lib/logger.js";
import { hides, type RelationCache } from "../../lib/relations.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import { listFollowing } from "./following.js";
import type { TimelineMetrics } from "./metrics.js";
import { decodeMessage } from "../../lib/proto-codec.js";

const SUBJECTS = ["chirp.tweet.v1.*", "chirp.graph.v1.*", LIVE_EVENTS.notificationCreated.subject];
/** Event ids remembered to drop a relay's re-publication of one event. */
const SEEN_EVENTS = 10_000;

export interface EventStream {
  /** The next message: an event, a keepalive after `keepaliveMs` idle, or undefined once the stream is over. Throws when cut off. */
  next(signal: AbortSignal): Promise<StreamEventsResponse | undefined>;
  close(): void;
}

export interface StreamHub {
  /** Registers a stream of `userId`'s events; resolves once events for it are routed (their following set is loaded). */
  open(userId: bigint): Promise<EventStream>;
  /** Streams open in this process. */
  readonly size: number;
  /** Ends every stream and the subscriptions. */
  close(): Promise<void>;
}

export function keepalive(): StreamEventsResponse {
  return create(StreamEventsResponseSchema, {
    eventTime: timestampNow(),
    event: { case: "keepalive", value: create(StreamEventsResponse_KeepaliveSchema) },
  });
}

interface Watcher {
  readonly userId: bigint;
  readonly streams: Set<Stream>;
  /** Undefined while the set is read from the graph; changes seen meanwhile wait in `pending`. */
  following: Set<bigint> | undefined;
  readonly pending: Array<{ followeeId: bigint; follows: boolean }>;
  ready: Promise<void>;
}

class Stream implements EventStream {
  private readonly queue: StreamEventsResponse[] = [];
  private wake: (() => void) | undefined;
  private failed: ConnectError | undefined;
  private done = false;

  constructor(
    private readonly limit: number,
    private readonly keepaliveMs: number,
    private readonly onClose: (s: Stream) => void,
    private readonly onCutoff: () => void,
  ) {}

  push(msg: StreamEventsResponse): void {
    if (this.done) return;
    if (this.queue.length >= this.limit) {
      this.failed = new ConnectError("event stream fell too far behind", Code.ResourceExhausted);
      this.onCutoff();
      this.close();
      return;
    }
    this.queue.push(msg);
    this.wake?.();
  }

  async next(signal: AbortSignal): Promise<StreamEventsResponse | undefined> {
    for (;;) {
      if (this.failed !== undefined) throw this.failed;
      const msg = this.queue.shift();
      if (msg !== undefined) return msg;
      if (this.done || signal.aborted) return undefined;
      const woke = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => finish(false), this.keepaliveMs);
        const onAbort = (): void => finish(true);
        const finish = (woken: boolean): void => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          this.wake = undefined;
          resolve(woken);
        };
        this.wake = () => finish(true);
        signal.addEventListener("abort", onAbort, { once: true });
      });
      if (!woke) return keepalive();
    }
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.wake?.();
    this.onClose(this);
  }
}

export function createStreamHub(deps: {
  bus: EventBus;
  clients: MeshClients;
  keepaliveMs: number;
  queueLimit: number;
  metrics: TimelineMetrics;
  log: Logger;
  /** Connected users' blocks and mutes: nothing of a user they block, are blocked by or mute is pushed to them. */
  relations: RelationCache;
}): StreamHub {
  const { bus, clients, metrics: m, relations } = deps;
  const log = deps.log.child({ component: "event-stream" });
  const users = new Map<bigint, Watcher>();
  const byFollowee = new Map<bigint, Set<Watcher>>();
  const seen = new Set<string>();
  const stop = new AbortController();
  let streams = 0;
  let subs: Subscription[] = [];
  /** The connection subscriptions are made on, while there is one. */
  let nc: NatsConnection | undefined;
  /** Resolves once the server holds `subs` (undefined: none held). */
  let subscribed: Promise<void> | undefined;

  const index = (w: Watcher, followeeId: bigint, follows: boolean): void => {
    let set = byFollowee.get(followeeId);
    if (follows) {
      if (set === undefined) byFollowee.set(followeeId, (set = new Set()));
      set.add(w);
    } else if (set !== undefined) {
      set.delete(w);
      if (set.size === 0) byFollowee.delete(followeeId);
    }
  };

  const applyFollow = (followerId: bigint, followeeId: bigint, follows: boolean): void => {
    const w = users.get(followerId);
    if (w === undefined) return;
    if (w.following === undefined) {
      w.pending.push({ followeeId, follows });
      return;
    }
    if (follows) w.following.add(followeeId);
    else w.following.delete(followeeId);
    index(w, followeeId, follows);
  };

  const forget = (w: Watcher): void => {
    if (users.get(w.userId) === w) users.delete(w.userId);
    for (const f of w.following ?? []) index(w, f, false);
  };

  const load = async (w: Watcher): Promise<void> => {
    const ids = await listFollowing(clients, w.userId);
    const following = new Set(ids);
    // Changes that arrived while the graph was read, in order, over the snapshot (each is idempotent).
    for (const c of w.pending.splice(0)) {
      if (c.follows) following.add(c.followeeId);
      else following.delete(c.followeeId);
    }
    w.following = following;
    if (users.get(w.userId) !== w) return;
    for (const f of following) index(w, f, true);
  };

  const pushTo = (watchers: Iterable<Watcher | undefined>, msg: () => StreamEventsResponse, kind: string): void => {
    for (const w of watchers) {
      if (w === undefined) continue;
      for (const s of w.streams) {
        s.push(msg());
        m.streamEvents.inc({ kind });
      }
    }
  };

  /**
   * The watchers who do not hide `actorId` (lib/relations.ts: one cached set
   * read per connected recipient). A set that cannot be read drops that
   * push: live events are at most once, and a block must not leak.
   */
  const notHiding = async (watchers: Iterable<Watcher | undefined>, actorId: bigint): Promise<Watcher[]> => {
    const ws = [...watchers].filter((w): w is Watcher => w !== undefined);
    const keep = await Promise.all(ws.map((w) => relations.get(w.userId).then((r) => !hides(r, actorId), () => false)));
    return ws.filter((_, i) => keep[i]);
  };

  const tweetFor = async (tweetId: bigint): Promise<Tweet | undefined> => {
    const { tweets } = await clients.tweet.batchGetTweets({ tweetIds: [tweetId] });
    return tweets[0];
  };

  const userFor = async (userId: bigint): Promise<User | undefined> => {
    const { users: found } = await clients.user.batchGetUsers({ userIds: [userId] });
    return found[0];
  };

  const route = async (msg: Msg): Promise<void> => {
    switch (msg.subject) {
      case EVENTS.tweetCreated.subject: {
        const t = decodeMessage(EVENTS.tweetCreated.schema, msg.data);
        const home = new Set<Watcher>(byFollowee.get(t.authorId));
        const own = users.get(t.authorId);
        if (own?.following !== undefined) home.add(own);
        const mentioned = t.mentions.filter((id) => id !== t.authorId).map((id) => users.get(id));
        if (home.size === 0 && mentioned.every((w) => w === undefined)) return;
        const [tweet, homeTo, mentionTo] = await Promise.all([tweetFor(t.tweetId), notHiding(home, t.authorId), notHiding(mentioned, t.authorId)]);
        if (tweet === undefined) return;
        const at = t.createTime;
        pushTo(homeTo, () => event(at, { case: "homeTweet", value: create(StreamEventsResponse_HomeTweetSchema, { tweet }) }), "home_tweet");
        pushTo(mentionTo, () => event(at, { case: "mention", value: create(StreamEventsResponse_MentionSchema, { tweet }) }), "mention");
        return;
      }
      case EVENTS.tweetLiked.subject: {
        const l = decodeMessage(EVENTS.tweetLiked.schema, msg.data);
        const author = users.get(l.authorId);
        if (author === undefined || l.likerId === l.authorId) return;
        const [liker, to] = await Promise.all([userFor(l.likerId), notHiding([author], l.likerId)]);
        if (liker === undefined) return;
        pushTo(to, () => event(l.likeTime, { case: "like", value: create(StreamEventsResponse_LikeSchema, { tweetId: l.tweetId, liker }) }), "like");
        return;
      }
      case EVENTS.userFollowed.subject: {
        const f = decodeMessage(EVENTS.userFollowed.schema, msg.data);
        applyFollow(f.followerId, f.followeeId, true);
        const followee = users.get(f.followeeId);
        if (followee === undefined) return;
        const [follower, to] = await Promise.all([userFor(f.followerId), notHiding([followee], f.followerId)]);
        if (follower === undefined) return;
        pushTo(to, () => event(f.followTime, { case: "follow", value: create(StreamEventsResponse_FollowSchema, { follower }) }), "follow");
        return;
      }
      case EVENTS.userUnfollowed.subject: {
        const u = decodeMessage(EVENTS.userUnfollowed.schema, msg.data);
        applyFollow(u.followerId, u.followeeId, false);
        return;
      }
      case LIVE_EVENTS.notificationCreated.subject: {
        const n = decodeMessage(LIVE_EVENTS.notificationCreated.schema, msg.data);
        const recipient = users.get(n.recipientId);
        if (recipient === undefined) return;
        const [actor, tweet, to] = await Promise.all([
          userFor(n.actorId),
          n.kind === NotificationKind.FOLLOW || n.tweetId === 0n ? undefined : tweetFor(n.tweetId),
          notHiding([recipient], n.actorId),
        ]);
        // A deleted actor or tweet: the inbox leaves it out too.
        if (actor === undefined || (n.kind !== NotificationKind.FOLLOW && tweet === undefined)) return;
        const notification = create(NotificationSchema, {
          id: n.notificationId,
          kind: n.kind,
          actor,
          ...(tweet === undefined ? {} : { tweet }),
          ...(n.createTime === undefined ? {} : { createTime: n.createTime }),
          read: false,
          actors: [actor],
          actorCount: 1,
        });
        pushTo(to, () => event(n.createTime, { case: "notification", value: notification }), "notification");
        return;
      }
    }
  };

  /** Holds no subscriptions any more (they ended, or went with their connection). */
  const dropSubscriptions = (): void => {
    subs = [];
    subscribed = undefined;
    m.streamSubscriptions.set(0);
  };

  const unsubscribe = (): void => {
    for (const s of subs) s.unsubscribe();
    dropSubscriptions();
  };

  /**
   * Subscribes if a stream is open and nothing is subscribed; resolves once the
   * server holds the subscriptions (a flush), so an event published after a
   * stream opened reaches it, whichever process publishes it. Not connected:
   * resolves at once; the loop subscribes when the connection comes.
   */
  const subscribe = (): Promise<void> => {
    if (nc === undefined || streams === 0) return Promise.resolve();
    if (subscribed === undefined) {
      const conn = nc;
      try {
        for (const subject of SUBJECTS) subs.push(conn.subscribe(subject, { callback: (err, msg) => (err ? undefined : receive(msg)) }));
      } catch (err) {
        // The connection closed meanwhile: the stream fails (Unavailable) and its client opens another.
        unsubscribe();
        return Promise.reject(err);
      }
      m.streamSubscriptions.set(subs.length);
      log.info({ subjects: SUBJECTS }, "routing live events");
      subscribed = conn.flush().catch(() => {});
    }
    return subscribed;
  };

  const receive = (msg: Msg): void => {
    // The relay may publish an event twice (after a crash between the ack and
    // marking it sent); JetStream drops the copy, a core subscription does not.
    const id = msg.headers?.get(EVENT_ID_HEADER) ?? "";
    if (id !== "") {
      if (seen.has(id)) return;
      seen.add(id);
      if (seen.size > SEEN_EVENTS) seen.delete(seen.values().next().value!);
    }
    route(msg).catch((err: unknown) => log.warn({ err, subject: msg.subject }, "event not pushed"));
  };

  const aborted = new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve(), { once: true }));
  // One set of subscriptions per connection; the client resubscribes by
  // itself across reconnects, and a new connection (the old one given up)
  // gets new ones.
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        const conn = await bus.ready(stop.signal);
        // The last connection's subscriptions went with it.
        dropSubscriptions();
        nc = conn.nc;
        void subscribe();
        await Promise.race([conn.nc.closed(), aborted]);
        nc = undefined;
      } catch (err) {
        if (stop.signal.aborted) break;
        log.warn({ err }, "live event subscription failed; retrying");
        await sleep(1000, stop.signal);
      }
    }
  })();

  return {
    async open(userId) {
      if (stop.signal.aborted) throw new ConnectError("server is shutting down", Code.Unavailable);
      // Counted first, so that it is subscribed for: before a new watcher's
      // graph is read, so a follow or unfollow meanwhile is applied over it.
      streams++;
      m.streams.inc();
      const held = subscribe();
      let w = users.get(userId);
      if (w === undefined) {
        const fresh: Watcher = { userId, streams: new Set(), following: undefined, pending: [], ready: Promise.resolve() };
        fresh.ready = held.then(() => load(fresh)).catch((err: unknown) => {
          forget(fresh);
          throw err;
        });
        users.set(userId, fresh);
        w = fresh;
      }
      const watcher = w;
      const stream = new Stream(
        deps.queueLimit,
        deps.keepaliveMs,
        (s) => {
          watcher.streams.delete(s);
          streams--;
          m.streams.dec();
          if (watcher.streams.size === 0) forget(watcher);
          if (streams === 0) unsubscribe();
        },
        () => m.streamCutoffs.inc(),
      );
      watcher.streams.add(stream);
      try {
        await Promise.all([watcher.ready, held]);
      } catch (err) {
        stream.close();
        throw ConnectError.from(err, Code.Unavailable);
      }
      return stream;
    },
    get size() {
      return streams;
    },
    async close() {
      stop.abort();
      unsubscribe();
      for (const w of [...users.values()]) for (const s of [...w.streams]) s.close();
      await loop;
    },
  };
}

function event(at: Timestamp | undefined, value: StreamEventsResponse["event"]): StreamEventsResponse {
  return create(StreamEventsResponseSchema, { eventTime: at ?? timestampNow(), event: value });
}
