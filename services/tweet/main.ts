// The tweet service process: tweets, likes and the outbox relay to NATS.
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { runService } from "../lib/service-main.js";
import { createTweetContext } from "./context.js";
import { routes } from "./routes.js";

await runService({ name: "tweet", service: TweetService, createContext: createTweetContext, routes });
