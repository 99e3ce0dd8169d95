// The tweet service as a process hosts it: tweets, likes and the outbox relay.
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import type { ServiceSpec } from "../../lib/service-main.js";
import { createTweetContext, type TweetContext } from "./context.js";
import { routes } from "./routes.js";

export const tweetService: ServiceSpec<typeof TweetService, TweetContext> = { name: "tweet", service: TweetService, createContext: createTweetContext, routes };
