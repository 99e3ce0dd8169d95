// The search service as a process hosts it: the search index and trends.
import { SearchService } from "../../gen/chirp/search/v1/search_service_pb.js";
import type { ServiceSpec } from "../../lib/service-main.js";
import { createSearchContext, type SearchContext } from "./context.js";
import { routes } from "./routes.js";

export const searchService: ServiceSpec<typeof SearchService, SearchContext> = { name: "search", service: SearchService, createContext: createSearchContext, routes };
