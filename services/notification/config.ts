import { EnvReader, type Env } from "../../lib/config.js";

/** The notification service's own settings (CHIRP_NOTIFICATION_*), read once at start. */
export interface NotificationConfig {
  /** CHIRP_NOTIFICATION_CONSUMERS: whether this process runs the two consumers that build inboxes from events. */
  readonly consumers: boolean;
  /** CHIRP_NOTIFICATION_CONCURRENCY: events each consumer handles at once in this process. */
  readonly concurrency: number;
  /** CHIRP_NOTIFICATION_FAN_OUT: inboxes one event writes at once (a tweet mentioning many people). */
  readonly fanOut: number;
  /** CHIRP_NOTIFICATION_GROUP_SCAN: rows a grouped page reads at most (skipped group members count). */
  readonly groupScan: number;
}

export function loadNotificationConfig(env: Env): NotificationConfig {
  const read = new EnvReader(env);
  const config: NotificationConfig = {
    consumers: read.oneOf("CHIRP_NOTIFICATION_CONSUMERS", ["true", "false"], "true") === "true",
    concurrency: read.int("CHIRP_NOTIFICATION_CONCURRENCY", 8, 1, 256),
    fanOut: read.int("CHIRP_NOTIFICATION_FAN_OUT", 8, 1, 256),
    groupScan: read.int("CHIRP_NOTIFICATION_GROUP_SCAN", 400, 100, 1000),
  };
  read.done();
  return config;
}
