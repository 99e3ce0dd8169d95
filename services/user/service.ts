// The user service as a process hosts it: accounts, credentials, profiles and sessions.
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import type { ServiceSpec } from "../../lib/service-main.js";
import { createUserContext, type UserContext } from "./context.js";
import { routes } from "./routes.js";

export const userService: ServiceSpec<typeof UserService, UserContext> = { name: "user", service: UserService, createContext: createUserContext, routes };
