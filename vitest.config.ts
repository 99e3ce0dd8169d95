import { defineConfig } from "vitest/config";
import SummaryReporter from "./test/summary-reporter.js";

/** System test files that run after every other, alone (the "system-alone" project). */
const ALONE = ["test/integration/reshard-system.test.ts"];

// Three projects: "unit" needs no servers (milliseconds per file); "system"
// talks to real MariaDB, Redis and NATS. Its globalSetup starts one cluster
// per run that every system file shares as a tenant (test/support/system.ts);
// only files that break servers start their own. "system-alone" runs last, one
// file at a time on clusters of their own (ALONE). `vitest run --project unit`
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
          exclude: ALONE,
          globalSetup: ["test/support/global-setup.ts"],
        },
      },
      {
        // Files whose property is a bound on time the machine must be free to keep: they run
        // after the rest (groupOrder), one at a time, on clusters of their own. The split under
        // write load must hold writes under its 800 ms budget: beside two other files' clusters
        // on this 2-core machine its fence's RENAME alone took 650 ms, and every attempt gave up,
        // with the code of before and after 2026-12-07's changes alike.
        extends: true,
        test: {
          name: "system-alone",
          include: ALONE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
