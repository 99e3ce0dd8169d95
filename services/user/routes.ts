import type { ServiceImpl } from "@connectrpc/connect";
import type { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import type { ServiceContext } from "../lib/service-context.js";

/**
 * UserService handlers. None are implemented yet: they arrive with issue 4 (accounts and the social graph).
 * Until then every RPC answers Unimplemented rather than a made-up result.
 */
export function routes(_ctx: ServiceContext): Partial<ServiceImpl<typeof UserService>> {
  return {};
}
