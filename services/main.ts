// The Chirp server process. By default every service and the gateway in one
// process (`--target all`, what `npm start` runs); `--target tweet` one
// service, as the mesh runs it; or any list (targets.ts). `--processes N`
// runs N such processes behind the same ports (lib/workers.ts).
import { ConfigError, EnvReader, LOG_LEVELS } from "../lib/config.js";
import { createLogger } from "../lib/logger.js";
import { runProcess } from "../lib/service-main.js";
import { isWorker, processesArgument, runWorkers } from "../lib/workers.js";
import { parseTargets, targetArgument } from "./targets.js";

try {
  const argv = process.argv.slice(2);
  const targets = parseTargets(targetArgument(argv, process.env));
  const processes = processesArgument(argv, process.env);
  if (processes > 1 && !isWorker()) await runWorkers(processes, createLogger("workers", new EnvReader(process.env).oneOf("LOG_LEVEL", LOG_LEVELS, "info")));
  else await runProcess(targets);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`[chirp] ${err.message}`);
  process.exit(1);
}
