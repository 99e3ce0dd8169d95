// The graph service as a process hosts it: follow edges in both directions and their counts.
import { GraphService } from "../../gen/chirp/graph/v1/graph_service_pb.js";
import type { ServiceSpec } from "../../lib/service-main.js";
import { createGraphContext, type GraphContext } from "./context.js";
import { routes } from "./routes.js";

export const graphService: ServiceSpec<typeof GraphService, GraphContext> = { name: "graph", service: GraphService, createContext: createGraphContext, routes };
