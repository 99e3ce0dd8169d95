// Worker threads do not inherit the main thread's `--import tsx` loader for
// their entry module, so this plain-JS entry registers tsx, then loads the
// TypeScript worker.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
