// Makes (once) the P-256 key that signs Web Push requests (VAPID), in a
// directory shared by the containers that need it (docker-compose's `keys`
// job): <dir>/vapid-key.pem, private, 0600: only the notification service
// reads it. Re-running keeps the existing key, so browsers' subscriptions,
// which are bound to its public half, stay valid.
import { join } from "node:path";
import { loadOrCreateVapidKey, VAPID_KEY_FILE } from "../lib/push/vapid.js";

const dir = process.argv[2];
if (dir === undefined) {
  console.error("usage: vapid-key.ts <directory>");
  process.exit(2);
}
const { created, publicKey } = loadOrCreateVapidKey(join(dir, VAPID_KEY_FILE));
console.error(`[keys] ${created ? "created" : "kept"} the web push (VAPID) key in ${dir}; public key ${publicKey}`);
