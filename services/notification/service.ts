// The notification service as a process hosts it: each user's inbox and read position.
import { NotificationService } from "../../gen/chirp/notification/v1/notification_service_pb.js";
import type { ServiceSpec } from "../../lib/service-main.js";
import { createNotificationContext, type NotificationContext } from "./context.js";
import { routes } from "./routes.js";

export const notificationService: ServiceSpec<typeof NotificationService, NotificationContext> = {
  name: "notification",
  service: NotificationService,
  createContext: createNotificationContext,
  routes,
};
