import { consume, type EventConsumer } from "../../lib/events/consumer.js";
import type { ServiceContext } from "../../lib/service-context.js";
import { loadGraphConfig, type GraphConfig } from "./config.js";
import { GRAPH_EDGE_EVENTS } from "./events.js";
import { createEdgeRepair, type EdgeRepair } from "./repair.js";

/** The shared service context plus the graph's repair of one-sided edges. */
export interface GraphContext extends ServiceContext {
  readonly graph: GraphConfig;
  readonly repair: EdgeRepair;
}

/** The durable consumer's name: its position is shared by every graph instance and survives restarts. */
export const EDGE_REPAIR_DURABLE = "graph-edge-repair";

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
  // Without NATS the sweep alone repairs; events wait in the outbox.
  let consumer: EventConsumer | undefined;
  if (ctx.bus === undefined) log.warn("NATS_URL not set: one-sided edges are repaired by the sweep only");
  else {
    consumer = consume({
      bus: ctx.bus,
      durable: EDGE_REPAIR_DURABLE,
      subjects: GRAPH_EDGE_EVENTS,
      handler: (event) => repair.handleEvent(event),
      log,
      metrics: ctx.metrics,
    });
  }
  return {
    ...ctx,
    graph,
    repair,
    // Reverse order of opening: the consumer (before the bus), then the sweep.
    close: async () => {
      await consumer?.stop();
      await repair.close();
    },
  };
}
