// Makes (once) the mesh secret the gateway vouches for callers with
// (decision 22), and each service's own key derived from it, in a volume
// whose subdirectories are mounted one per container (docker-compose's
// `keys` job):
//   <dir>/gateway/mesh-secret   the secret, 0600: only the gateway reads it
//   <dir>/<service>/mesh-keys   that service's CHIRP_MESH_KEYS: it checks
//                               assertions with it but cannot make one
// Re-running keeps the secret. A rotation: put "<new>,<old>" in the secret
// file and re-run; every service then accepts both, the gateway signs with
// the new one; drop the old one a minute (the assertion TTL) later.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatServiceKeys, parseMeshSecrets } from "../lib/auth/assertion.js";
import { resolveMeshSecret } from "../lib/auth/keys.js";
import { SERVICE_NAMES } from "../lib/mesh.js";

const dir = process.argv[2];
if (dir === undefined) {
  console.error("usage: mesh-keys.ts <directory>");
  process.exit(2);
}
const { secret, source } = resolveMeshSecret({}, join(dir, "gateway", "mesh-secret"));
const secrets = parseMeshSecrets(secret);
for (const name of SERVICE_NAMES) {
  mkdirSync(join(dir, name), { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, name, "mesh-keys"), `${formatServiceKeys(secrets, [name])}\n`, { mode: 0o644 });
}
console.error(`[keys] the mesh secret from ${source}; a key for each of ${SERVICE_NAMES.join(", ")}`);
