// The timeline service process: home and user timelines, fan-out workers and the live event stream.
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { createServiceContext } from "../lib/service-context.js";
import { runService } from "../lib/service-main.js";
import { routes } from "./routes.js";

await runService({ name: "timeline", service: TimelineService, createContext: createServiceContext, routes });
