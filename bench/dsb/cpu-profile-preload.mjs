// Preloaded into every mesh process by `npm run bench -- --profile`
// (NODE_OPTIONS=--import <this file>; node refuses --cpu-prof there). The
// first SIGUSR2 starts V8's sampling CPU profiler through the in-process
// inspector session; the second stops it and writes
// $CHIRP_BENCH_PROFILE_DIR/<pid>.cpuprofile. So a profile covers exactly the
// bench's measured window. Plain JavaScript: it loads before tsx does.
//
// Over the same window it counts per-call allocations the RPC path is known
// to make (issue 17): AbortControllers made and aborted, abort listeners
// added, Headers objects, timers started. They are counted where every caller
// goes through: the global constructors, setTimeout and setInterval, and the prototypes'
// methods (so Node's own uses are counted too). Written as
// <pid>.allocations.json next to the profile.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";

const dir = process.env.CHIRP_BENCH_PROFILE_DIR;
if (isMainThread && dir !== undefined) {
  const counts = { abortControllers: 0, aborts: 0, abortListeners: 0, headers: 0, timers: 0 };
  let counting = false;

  const OriginalAbortController = globalThis.AbortController;
  globalThis.AbortController = class AbortController extends OriginalAbortController {
    constructor() {
      super();
      if (counting) counts.abortControllers++;
    }
  };
  const abort = OriginalAbortController.prototype.abort;
  OriginalAbortController.prototype.abort = function (...args) {
    if (counting) counts.aborts++;
    return abort.apply(this, args);
  };
  const addEventListener = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, ...rest) {
    if (counting && type === "abort") counts.abortListeners++;
    return addEventListener.call(this, type, ...rest);
  };
  const OriginalHeaders = globalThis.Headers;
  globalThis.Headers = class Headers extends OriginalHeaders {
    constructor(init) {
      super(init);
      if (counting) counts.headers++;
    }
  };
  const setTimeout_ = globalThis.setTimeout;
  globalThis.setTimeout = function setTimeout(...args) {
    if (counting) counts.timers++;
    return setTimeout_(...args);
  };
  // Intervals are timers too (an event consumer kept one per event until 2026-12-07).
  const setInterval_ = globalThis.setInterval;
  globalThis.setInterval = function setInterval(...args) {
    if (counting) counts.timers++;
    return setInterval_(...args);
  };

  const session = new Session();
  session.connect();
  let running = false;
  process.on("SIGUSR2", () => {
    if (!running) {
      running = true;
      for (const k of Object.keys(counts)) counts[k] = 0;
      counting = true;
      session.post("Profiler.enable", () => session.post("Profiler.setSamplingInterval", { interval: 1000 }, () => session.post("Profiler.start")));
      return;
    }
    running = false;
    counting = false;
    writeFileSync(join(dir, `${process.pid}.allocations.json`), JSON.stringify(counts));
    session.post("Profiler.stop", (err, result) => {
      if (err === null && result !== undefined) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
      session.post("Profiler.disable");
    });
  });
}
