import { defineConfig } from "vitest/config";
import SummaryReporter from "./test/summary-reporter.js";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "services/**/*.test.ts", "gateway/**/*.test.ts", "scripts/**/*.test.ts", "shard-config/**/*.test.ts"],
    // Integration files start real mariadbd/redis/nats processes in beforeAll.
    hookTimeout: 120_000,
    testTimeout: 60_000,
    // Each end-to-end file owns a whole cluster and mesh (about 14 processes);
    // two such files at once on 2 cores made timing-sensitive tests (argon2
    // sign-ups, stream aborts, refused uploads) miss their deadlines now and
    // then, so files run one at a time: slower, but each test gets the machine.
    maxWorkers: 1,
    reporters: ["default", new SummaryReporter()],
  },
});
