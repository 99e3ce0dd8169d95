// The media service as a process hosts it: uploads, the blob store, thumbnails and media metadata.
import { MediaService } from "../../gen/chirp/media/v1/media_service_pb.js";
import type { ServiceSpec } from "../../lib/service-main.js";
import { createMediaContext, type MediaContext } from "./context.js";
import { routes } from "./routes.js";

export const mediaService: ServiceSpec<typeof MediaService, MediaContext> = { name: "media", service: MediaService, createContext: createMediaContext, routes };
