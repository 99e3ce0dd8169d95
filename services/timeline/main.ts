// The timeline service process: home and user timelines, fan-out workers and the live event stream.
// One service alone: the mesh (`npm start -- --mesh`, docker-compose).
import { runProcess } from "../../lib/service-main.js";
import { timelineService } from "./service.js";

await runProcess({ services: [timelineService], gateway: false });
