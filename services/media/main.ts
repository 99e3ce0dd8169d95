// The media service process: uploads, the blob store, thumbnails and media metadata.
// One service alone: the mesh (`npm start -- --mesh`, docker-compose).
import { runProcess } from "../../lib/service-main.js";
import { mediaService } from "./service.js";

await runProcess({ services: [mediaService], gateway: false });
