// Makes (once) the Ed25519 key pair that signs session tokens, in a directory
// shared by the containers that need it (docker-compose's `keys` job):
//   <dir>/token-signing-key.pem   private, 0600: only the user service reads it
//   <dir>/token-public-key.pem    public: the gateway verifies tokens with it
// Re-running keeps the existing key, so issued tokens stay valid.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadOrCreateTokenKey } from "../lib/auth/keys.js";

const dir = process.argv[2];
if (dir === undefined) {
  console.error("usage: token-keys.ts <directory>");
  process.exit(2);
}
const { publicKey, created } = loadOrCreateTokenKey(join(dir, "token-signing-key.pem"));
writeFileSync(join(dir, "token-public-key.pem"), publicKey, { mode: 0o644 });
console.error(`[keys] ${created ? "created" : "kept"} the token signing key in ${dir}`);
