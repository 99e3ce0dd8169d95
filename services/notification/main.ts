// The notification service process: each user's inbox and read position.
// One service alone: the mesh (`npm start -- --mesh`, docker-compose).
import { runProcess } from "../../lib/service-main.js";
import { notificationService } from "./service.js";

await runProcess({ services: [notificationService], gateway: false });
