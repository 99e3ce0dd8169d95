import { consume, type EventConsumer } from "../../lib/events/consumer.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { consumeUserDeleted } from "../../lib/events/user-deleted.js";
import type { ServiceContext } from "../../lib/service-context.js";
import { loadGraphConfig, type GraphConfig } from "./config.js";
import { createBlocks, type Blocks } from "./blocks.js";
import { BLOCK_EVENTS, GRAPH_EDGE_EVENTS } from "./events.js";
import { createFollowEdges, type FollowEdges } from "./follow-edges.js";
import { createEdgeRepair, type EdgeRepair } from "./repair.js";
import { createGraphErasure, type GraphErasure } from "./erase.js";

/** The shared service context plus the graph's repair of one-sided edges. */
export interface GraphContext extends ServiceContext {
  readonly graph: GraphConfig;
  readonly repair: EdgeRepair;
  /** Follow and unfollow, one change per edge at a time in this process. */
  readonly follows: FollowEdges;
  /** Blocks and mutes. */
  readonly blocks: Blocks;
  /** A deleted account's follows, blocks and mutes, erased from its UserDeleted event. */
  readonly erasure: GraphErasure;
}

/** The durable consumer's name: its position is shared by every graph instance and survives restarts. */
export const EDGE_REPAIR_DURABLE = "graph-edge-repair";

/** The graph's consumer of UserDeleted (its own durable: the repair's filter is chirp.graph.v1.*). */
export const GRAPH_ERASE_DURABLE = "graph-account-erase";

export async function createGraphContext(ctx: ServiceContext): Promise<GraphContext> {
  const graph = loadGraphConfig(ctx.env);
  const log = ctx.log.child({ component: "edge-repair" });
  const repair = createEdgeRepair({
    router: ctx.router,
    log,
    metrics: ctx.metrics,
    sweepIntervalMs: graph.sweepIntervalMs,
    sweepGraceMs: graph.sweepGraceMs,
    sweepBatch: graph.sweepBatch,
    userCache: ctx.userCache,
  });
  repair.start();
  const follows = createFollowEdges({ router: ctx.router, ids: ctx.ids, userCache: ctx.userCache, repair });
  const blocks = createBlocks({ router: ctx.router, ids: ctx.ids, relations: ctx.relations, follows, log: ctx.log.child({ component: "blocks" }) });
  const erasure = createGraphErasure({ router: ctx.router, follows, blocks, relations: ctx.relations, log: ctx.log.child({ component: "account-erase" }) });
  // Without NATS the sweep alone repairs; events wait in the outbox.
  let consumer: EventConsumer | undefined;
  let eraser: EventConsumer | undefined;
  if (ctx.bus === undefined) log.warn("NATS_URL not set: one-sided edges are repaired by the sweep only");
  else {
    consumer = consume({
      bus: ctx.bus,
      durable: EDGE_REPAIR_DURABLE,
      // The block events share the durable (its filter stays chirp.graph.v1.*).
      subjects: [...GRAPH_EDGE_EVENTS, ...BLOCK_EVENTS],
      handler: (event) =>
        event.subject === EVENTS.userBlocked.subject || event.subject === EVENTS.userUnblocked.subject
          ? blocks.handleEvent(event)
          : repair.handleEvent(event),
      log,
      metrics: ctx.metrics,
    });
    const eraseLog = ctx.log.child({ component: "account-erase" });
    eraser = consumeUserDeleted({
      bus: ctx.bus,
      durable: GRAPH_ERASE_DURABLE,
      erase: async (userId) => {
        const erased = await erasure.erase(userId);
        eraseLog.info({ user_id: String(userId), ...erased }, "deleted account's graph erased");
      },
      concurrency: 2,
      log: eraseLog,
      metrics: ctx.metrics,
    });
  }
  return {
    ...ctx,
    graph,
    repair,
    follows,
    blocks,
    erasure,
    // Reverse order of opening: the consumers (before the bus), then the sweep.
    close: async () => {
      await eraser?.stop();
      await consumer?.stop();
      await repair.close();
    },
  };
}
