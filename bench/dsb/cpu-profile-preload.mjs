// Preloaded into every mesh process by `npm run bench -- --profile`
// (NODE_OPTIONS=--import <this file>; node refuses --cpu-prof there). The
// first SIGUSR2 starts V8's sampling CPU profiler through the in-process
// inspector session; the second stops it and writes
// $CHIRP_BENCH_PROFILE_DIR/<pid>.cpuprofile. So a profile covers exactly the
// bench's measured window. Plain JavaScript: it loads before tsx does.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";

const dir = process.env.CHIRP_BENCH_PROFILE_DIR;
if (isMainThread && dir !== undefined) {
  const session = new Session();
  session.connect();
  let running = false;
  process.on("SIGUSR2", () => {
    if (!running) {
      running = true;
      session.post("Profiler.enable", () => session.post("Profiler.setSamplingInterval", { interval: 1000 }, () => session.post("Profiler.start")));
      return;
    }
    running = false;
    session.post("Profiler.stop", (err, result) => {
      if (err === null && result !== undefined) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
      session.post("Profiler.disable");
    });
  });
}
