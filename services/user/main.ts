// The user service process: accounts, credentials, profiles and sessions.
// One service alone: the mesh (`npm start -- --mesh`, docker-compose).
import { runProcess } from "../../lib/service-main.js";
import { userService } from "./service.js";

await runProcess({ services: [userService], gateway: false });
