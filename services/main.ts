// The Chirp server process. By default every service and the gateway in one
// process (`--target all`, what `npm start` runs); `--target tweet` one
// service, as the mesh runs it; or any list (targets.ts).
import { ConfigError } from "./lib/config.js";
import { runProcess } from "./lib/service-main.js";
import { parseTargets, targetArgument } from "./targets.js";

try {
  await runProcess(parseTargets(targetArgument(process.argv.slice(2), process.env)));
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`[chirp] ${err.message}`);
  process.exit(1);
}
