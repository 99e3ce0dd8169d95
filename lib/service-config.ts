import type { EnvReader } from "./config.js";
import { DEFAULT_PORTS, SERVICE_NAMES, envName, type ServiceName } from "./mesh.js";

/** CHIRP_<SERVICE>_ADDR for every service, defaulting to the documented local ports. */
export function meshAddresses(read: EnvReader): Record<ServiceName, string> {
  return Object.fromEntries(
    SERVICE_NAMES.map((s) => [s, read.string(envName.address(s), `127.0.0.1:${DEFAULT_PORTS[s].grpc}`)]),
  ) as Record<ServiceName, string>;
}
