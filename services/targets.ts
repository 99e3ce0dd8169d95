// Which components a process runs: `--target all` (every service and the
// gateway: the default of `npm start`), one (`--target tweet`), or a list
// (`--target tweet,timeline,gateway`). The same code serves every mode.
import { ConfigError, EnvReader, type Env } from "../lib/config.js";
import { SERVICE_NAMES, type ServiceName } from "../lib/mesh.js";
import type { AnyServiceSpec, ProcessTargets } from "../lib/service-main.js";
import { graphService } from "./graph/service.js";
import { mediaService } from "./media/service.js";
import { notificationService } from "./notification/service.js";
import { searchService } from "./search/service.js";
import { timelineService } from "./timeline/service.js";
import { tweetService } from "./tweet/service.js";
import { userService } from "./user/service.js";

/** Every service, in the order a process builds them. */
export const SERVICES: Readonly<Record<ServiceName, AnyServiceSpec>> = {
  user: userService,
  graph: graphService,
  tweet: tweetService,
  timeline: timelineService,
  search: searchService,
  media: mediaService,
  notification: notificationService,
};

export const TARGET_NAMES = ["all", ...SERVICE_NAMES, "gateway"] as const;

/** "all", or a comma-separated list of service names and "gateway". */
export function parseTargets(spec: string): ProcessTargets {
  const parts = spec
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (parts.length === 0) throw new ConfigError([`--target: name at least one of ${TARGET_NAMES.join(", ")}`]);
  const unknown = parts.filter((p) => !(TARGET_NAMES as readonly string[]).includes(p));
  if (unknown.length > 0) throw new ConfigError([`--target: unknown ${unknown.join(", ")} (one of ${TARGET_NAMES.join(", ")})`]);
  if (parts.includes("all")) return { services: SERVICE_NAMES.map((n) => SERVICES[n]), gateway: true };
  return { services: SERVICE_NAMES.filter((n) => parts.includes(n)).map((n) => SERVICES[n]), gateway: parts.includes("gateway") };
}

/**
 * The value of `--target X` / `--target=X` in `argv`, else the environment's.
 *
 * CHIRP_TARGET: what `services/main.ts` runs when no `--target` is given:
 * `all` (every service and the gateway), or a comma-separated list of
 * service names and `gateway`.
 */
export function targetArgument(argv: readonly string[], env: Env): string {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--target") return argv[i + 1] ?? "";
    if (arg.startsWith("--target=")) return arg.slice("--target=".length);
  }
  return new EnvReader(env).string("CHIRP_TARGET", "all");
}
