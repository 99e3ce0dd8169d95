import type { Logger } from "./logger.js";

/**
 * Runs `close` once on the first SIGTERM/SIGINT (or when the parent that spawned
 * us over IPC goes away), then exits. A second signal exits at once, for the
 * impatient Ctrl-C.
 */
export function onShutdownSignal(log: Logger, close: () => Promise<void>): void {
  let closingSince = 0;
  const stop = (reason: string): void => {
    if (closingSince > 0) {
      // The same Ctrl-C can arrive twice (terminal group signal plus a relay by npm).
      if (Date.now() - closingSince < 1000) return;
      log.warn({ reason }, "second shutdown request: exiting now");
      process.exit(1);
    }
    closingSince = Date.now();
    log.info({ reason }, "shutting down");
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "error during shutdown");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // An orphaned service must not keep its port: follow the parent down.
  if (process.send !== undefined) process.on("disconnect", () => stop("parent exited"));
}
