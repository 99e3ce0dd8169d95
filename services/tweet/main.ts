// The tweet service process: tweets, likes and the outbox relay to NATS.
// One service alone: the mesh (`npm start -- --mesh`, docker-compose).
import { runProcess } from "../../lib/service-main.js";
import { tweetService } from "./service.js";

await runProcess({ services: [tweetService], gateway: false });
