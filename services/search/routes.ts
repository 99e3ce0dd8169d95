import type { ServiceImpl } from "@connectrpc/connect";
import type { SearchService } from "../../gen/chirp/search/v1/search_service_pb.js";
import type { ServiceContext } from "../lib/service-context.js";

/**
 * SearchService handlers. None are implemented yet: they arrive with issue 7 (search and trending topics).
 * Until then every RPC answers Unimplemented rather than a made-up result.
 */
export function routes(_ctx: ServiceContext): Partial<ServiceImpl<typeof SearchService>> {
  return {};
}
