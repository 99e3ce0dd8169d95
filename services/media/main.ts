// The media service process: uploads, the blob store, thumbnails and media metadata.
import { MediaService } from "../../gen/chirp/media/v1/media_service_pb.js";
import { runService } from "../lib/service-main.js";
import { createMediaContext } from "./context.js";
import { routes } from "./routes.js";

await runService({ name: "media", service: MediaService, createContext: createMediaContext, routes });
