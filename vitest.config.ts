import { defineConfig } from "vitest/config";
import SummaryReporter from "./test/summary-reporter.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "services/**/*.test.ts", "gateway/**/*.test.ts", "scripts/**/*.test.ts", "shard-config/**/*.test.ts"],
    // Integration files start real mariadbd/redis/nats processes in beforeAll.
    hookTimeout: 120_000,
    testTimeout: 60_000,
    // Each file owns its processes; two cores gain nothing from more at once.
    maxWorkers: 2,
    reporters: ["default", new SummaryReporter()],
  },
});
