// Ctrl-C (or SIGTERM) during a benchmark stops every process the run started
// before it exits, so an interrupted run leaves no servers behind.
export function stopOnInterrupt(cleanup: () => Promise<unknown> | void, say: (line: string) => void): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      say(`${signal}: stopping every process this run started`);
      void Promise.resolve()
        .then(cleanup)
        .finally(() => process.exit(130));
    });
  }
}
