import { defineConfig } from "vitest/config";
import SummaryReporter from "./test/summary-reporter.js";

// Two projects: "unit" needs no servers (milliseconds per file); "system"
// talks to real MariaDB, Redis and NATS. Its globalSetup starts one cluster
// per run that every system file shares as a tenant (test/support/system.ts);
// only files that break servers start their own. `vitest run --project unit`
// runs the fast tier alone.
export default defineConfig({
  test: {
    hookTimeout: 120_000,
    testTimeout: 60_000,
    // Three files at once on a 2-core machine: most of a system file's time
    // is spent waiting on servers and child processes, not on its own CPU
    // (with two, a clean-clone run took 399 s of vitest, 7.5 min in all).
    maxWorkers: 3,
    // One module registry per worker, not per file (no file shares state
    // through modules, none mocks modules): importing the code anew for each
    // file was a large part of the suite's CPU (the unit project alone: 207 s
    // with isolation, 37 s without, at the same load).
    isolate: false,
    reporters: ["default", new SummaryReporter()],
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["lib/**/*.test.ts", "devcluster/**/*.test.ts", "bench/**/*.test.ts", "services/**/*.test.ts", "gateway/**/*.test.ts", "scripts/**/*.test.ts", "shard-config/**/*.test.ts", "test/unit/**/*.test.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "system",
          include: ["test/e2e/**/*.test.ts", "test/integration/**/*.test.ts", "test/browser/**/*.test.ts", "test/chaos/**/*.test.ts"],
          globalSetup: ["test/support/global-setup.ts"],
        },
      },
    ],
  },
});
