// The search service process: the full-text index, hashtag and mention search, and trends.
import { SearchService } from "../../gen/chirp/search/v1/search_service_pb.js";
import { runService } from "../lib/service-main.js";
import { createSearchContext } from "./context.js";
import { routes } from "./routes.js";

await runService({ name: "search", service: SearchService, createContext: createSearchContext, routes });
