// The user service process: accounts, credentials, profiles and sessions.
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { runService } from "../lib/service-main.js";
import { createUserContext } from "./context.js";
import { routes } from "./routes.js";

await runService({ name: "user", service: UserService, createContext: createUserContext, routes });
