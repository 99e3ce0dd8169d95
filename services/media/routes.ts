import type { ServiceImpl } from "@connectrpc/connect";
import type { MediaService } from "../../gen/chirp/media/v1/media_service_pb.js";
import type { ServiceContext } from "../lib/service-context.js";

/**
 * MediaService handlers. None are implemented yet: they arrive with issue 8 (media).
 * Until then every RPC answers Unimplemented rather than a made-up result.
 */
export function routes(_ctx: ServiceContext): Partial<ServiceImpl<typeof MediaService>> {
  return {};
}
