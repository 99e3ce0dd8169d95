// The graph service process: follow edges in both directions and their counts.
import { GraphService } from "../../gen/chirp/graph/v1/graph_service_pb.js";
import { createServiceContext } from "../lib/service-context.js";
import { runService } from "../lib/service-main.js";
import { routes } from "./routes.js";

await runService({ name: "graph", service: GraphService, createContext: createServiceContext, routes });
