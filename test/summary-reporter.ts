import type { Reporter, TestModule } from "vitest/node";

/**
 * Adds the slowest test files (where the suite's time goes: `npm test` has 6
 * minutes) and one plain closing line, "N passed, N failed, N skipped", after
 * vitest's own summary, so CI logs can be read by tools that do not know vitest.
 */
const SLOWEST_SHOWN = 12;

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      if (module.state() === "failed" && [...module.children.allTests()].length === 0) failed++;
    }
    const slowest = [...testModules].sort((a, b) => b.diagnostic().duration - a.diagnostic().duration).slice(0, SLOWEST_SHOWN);
    if (slowest.length > 1) {
      process.stdout.write(`\nslowest files (tests and hooks; three run at once):\n`);
      for (const m of slowest) process.stdout.write(`  ${(m.diagnostic().duration / 1000).toFixed(1).padStart(6)} s  ${m.relativeModuleId}\n`);
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
