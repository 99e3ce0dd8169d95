import type { EnvReader } from "./config.js";
import { DEFAULT_PORTS, SERVICE_NAMES, envName, type ServiceName } from "./mesh.js";

/**
 * Where each service is reached, defaulting to the local ports of mesh.ts.
 *
 * CHIRP_<SERVICE>_ADDR: where the gateway and the other services reach that
 * service when it is not hosted in the same process: `host:port`, or several
 * comma-separated for round-robin over its instances.
 */
export function meshAddresses(read: EnvReader): Record<ServiceName, string> {
  return Object.fromEntries(
    SERVICE_NAMES.map((s) => [s, read.string(envName.address(s), `127.0.0.1:${DEFAULT_PORTS[s].grpc}`)]),
  ) as Record<ServiceName, string>;
}
