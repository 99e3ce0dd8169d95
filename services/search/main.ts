// The search service process: the full-text index, hashtag and mention search, and trends.
import { SearchService } from "../../gen/chirp/search/v1/search_service_pb.js";
import { createServiceContext } from "../lib/service-context.js";
import { runService } from "../lib/service-main.js";
import { routes } from "./routes.js";

await runService({ name: "search", service: SearchService, createContext: createServiceContext, routes });
