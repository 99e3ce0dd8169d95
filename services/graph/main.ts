// The graph service process: follow edges in both directions and their counts.
import { GraphService } from "../../gen/chirp/graph/v1/graph_service_pb.js";
import { runService } from "../lib/service-main.js";
import { createGraphContext } from "./context.js";
import { routes } from "./routes.js";

await runService({ name: "graph", service: GraphService, createContext: createGraphContext, routes });
