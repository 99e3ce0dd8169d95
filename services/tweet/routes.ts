import type { ServiceImpl } from "@connectrpc/connect";
import type { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import type { ServiceContext } from "../lib/service-context.js";

/**
 * TweetService handlers. None are implemented yet: they arrive with issue 5 (tweets, likes and durable events).
 * Until then every RPC answers Unimplemented rather than a made-up result.
 */
export function routes(_ctx: ServiceContext): Partial<ServiceImpl<typeof TweetService>> {
  return {};
}
