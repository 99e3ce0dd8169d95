// The search service process: the full-text index, hashtag and mention search, and trends.
// One service alone: the mesh (`npm start -- --mesh`, docker-compose).
import { runProcess } from "../../lib/service-main.js";
import { searchService } from "./service.js";

await runProcess({ services: [searchService], gateway: false });
