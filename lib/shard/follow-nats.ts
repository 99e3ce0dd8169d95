// Connects to NATS in the background and points a shard router at the live
// topology once it can. Until then (NATS down at startup) the router keeps
// serving from the topology it was built with; nothing waits on NATS.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../logger.js";
import { parseNatsUrl } from "../events/nats-url.js";
import type { ShardRouter, TopologyWatch } from "./router.js";
import { openTopologyKv } from "./topology.js";

export interface TopologyFollower {
  /** The connection once made (services may share it); undefined before. */
  connection(): NatsConnection | undefined;
  /** Resolves when the watch is attached (tests, readiness); never rejects. */
  attached(): Promise<void>;
  /** Stops retrying and watching, drains the connection. */
  close(): Promise<void>;
}

export interface FollowTopologyOptions {
  /** NATS_URL: one URL or a comma-separated list. */
  readonly servers: string;
  readonly router: ShardRouter;
  readonly log: Logger;
  /** Client name shown by the server. */
  readonly name?: string;
  /** Pause between attempts while NATS cannot be reached; default 1000 ms. */
  readonly retryMs?: number;
}

export function followTopologyOverNats(opts: FollowTopologyOptions): TopologyFollower {
  const retryMs = opts.retryMs ?? 1000;
  const stop = new AbortController();
  let nc: NatsConnection | undefined;
  let watch: TopologyWatch | undefined;
  let markAttached!: () => void;
  const attached = new Promise<void>((resolve) => (markAttached = resolve));

  const loop = (async () => {
    let failures = 0;
    while (!stop.signal.aborted) {
      let conn: NatsConnection | undefined;
      try {
        conn = await connect({
          ...parseNatsUrl(opts.servers),
          ...(opts.name === undefined ? {} : { name: opts.name }),
          timeout: 2000,
          // Once connected, the client reconnects on its own for as long as it lives.
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1000,
        });
        const kv = await openTopologyKv(conn);
        if (stop.signal.aborted) throw new Error("closed");
        // The same connection carries the router's asks for heartbeats (decision 20).
        watch = await opts.router.followTopology(kv, conn);
        nc = conn;
        opts.log.info({ epoch: opts.router.topology().epoch }, "following the live shard topology");
        markAttached();
        return;
      } catch (err) {
        await conn?.close().catch(() => {});
        if (stop.signal.aborted) return;
        // Once loud, then quiet: a long NATS outage should not flood the log.
        if (failures++ === 0) opts.log.warn({ err }, "cannot follow the live shard topology yet; serving the configured one, retrying");
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryMs);
          stop.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    }
  })();

  return {
    connection: () => nc,
    attached: () => attached,
    close: async () => {
      stop.abort();
      await loop;
      watch?.stop();
      await nc?.drain().catch(() => nc?.close());
    },
  };
}
