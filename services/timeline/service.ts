// The timeline service as a process hosts it: home and user timelines, fan-out and live events.
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import type { ServiceSpec } from "../../lib/service-main.js";
import { createTimelineContext, type TimelineContext } from "./context.js";
import { routes } from "./routes.js";

export const timelineService: ServiceSpec<typeof TimelineService, TimelineContext> = { name: "timeline", service: TimelineService, createContext: createTimelineContext, routes };
