// The graph service process: follow edges in both directions and their counts.
// One service alone: the mesh (`npm start -- --mesh`, docker-compose).
import { runProcess } from "../../lib/service-main.js";
import { graphService } from "./service.js";

await runProcess({ services: [graphService], gateway: false });
