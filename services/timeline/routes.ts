import type { ServiceImpl } from "@connectrpc/connect";
import type { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import type { ServiceContext } from "../lib/service-context.js";

/**
 * TimelineService handlers. None are implemented yet: they arrive with issue 6 (timelines).
 * Until then every RPC answers Unimplemented rather than a made-up result.
 */
export function routes(_ctx: ServiceContext): Partial<ServiceImpl<typeof TimelineService>> {
  return {};
}
