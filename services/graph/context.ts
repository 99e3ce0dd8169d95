import { createServiceContext, type ServiceContext } from "../lib/service-context.js";
import type { BaseContext } from "../lib/service-main.js";
import { loadGraphConfig, type GraphConfig } from "./config.js";
import { createEdgeRepair, type EdgeRepair } from "./repair.js";

/** The shared service context plus the graph's repair of one-sided edges. */
export interface GraphContext extends ServiceContext {
  readonly graph: GraphConfig;
  readonly repair: EdgeRepair;
}

export async function createGraphContext(base: BaseContext): Promise<GraphContext> {
  const graph = loadGraphConfig(base.env);
  const ctx = await createServiceContext(base);
  const repair = createEdgeRepair({
    router: ctx.router,
    log: base.log.child({ component: "edge-repair" }),
    metrics: base.metrics,
    sweepIntervalMs: graph.sweepIntervalMs,
    sweepGraceMs: graph.sweepGraceMs,
    sweepBatch: graph.sweepBatch,
  });
  repair.start();
  return {
    ...ctx,
    graph,
    repair,
    // Reverse order of opening: the sweep before the pools it uses.
    close: async () => {
      await repair.close();
      await ctx.close();
    },
  };
}
