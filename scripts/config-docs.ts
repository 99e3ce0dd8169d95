// Writes docs/configuration.md from the config loaders (config-reference.ts),
// keeping its hand-written head. `npm run docs:config`.
import { readFileSync, writeFileSync } from "node:fs";
import { relative } from "node:path";
import { DOC_PATH, REPO_ROOT, introOf, renderReference } from "./config-reference.js";

let existing: string | undefined;
try {
  existing = readFileSync(DOC_PATH, "utf8");
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
}
const reference = renderReference(introOf(existing));
if (reference.problems.length > 0) {
  console.error(`[docs:config] the loaders and their descriptions disagree:\n  - ${reference.problems.join("\n  - ")}`);
  process.exit(1);
}
const path = relative(REPO_ROOT, DOC_PATH);
if (reference.text === existing) {
  console.error(`[docs:config] ${path} is up to date (${reference.count} settings)`);
} else {
  writeFileSync(DOC_PATH, reference.text);
  console.error(`[docs:config] wrote ${path} (${reference.count} settings)`);
}
