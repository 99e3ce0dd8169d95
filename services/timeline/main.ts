// The timeline service process: home and user timelines, fan-out workers and the live event stream.
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { runService } from "../lib/service-main.js";
import { createTimelineContext } from "./context.js";
import { routes } from "./routes.js";

await runService({ name: "timeline", service: TimelineService, createContext: createTimelineContext, routes });
