import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "services/**/*.test.ts", "gateway/**/*.test.ts"],
    hookTimeout: 120000,
    testTimeout: 60000,
  },
});
