// A tiny watchdog process that stops our servers if we die without stopping
// them (SIGKILL, crash, a test runner killing its worker). It reads pids on
// stdin; when stdin closes, because we exited in whatever way, it sends
// SIGTERM to the pids still listed and SIGKILL to those alive after a grace
// period. Runs in its own session so a terminal Ctrl-C does not reach it.
import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";

const GRACE_MS = 20_000;

// Plain JS run with `node -e`: no loader, starts in ~40 ms.
const REAPER_SOURCE = `
const pids = new Set();
let buf = "";
let reaping = false;
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === "EPERM"; } };
const reap = () => {
  if (reaping) return;
  reaping = true;
  for (const pid of pids) { try { process.kill(pid, "SIGTERM"); } catch {} }
  const until = Date.now() + ${GRACE_MS};
  const tick = setInterval(() => {
    const left = [...pids].filter(alive);
    if (left.length === 0 || Date.now() > until) {
      for (const pid of left) { try { process.kill(pid, "SIGKILL"); } catch {} }
      clearInterval(tick);
      process.exit(0);
    }
  }, 100);
};
process.on("SIGINT", () => {});
process.on("SIGHUP", () => {});
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf("\\n")) >= 0) {
    const [op, arg] = buf.slice(0, nl).split(" ");
    buf = buf.slice(nl + 1);
    const pid = Number(arg);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    if (op === "+") pids.add(pid); else if (op === "-") pids.delete(pid);
  }
});
process.stdin.on("end", reap);
process.stdin.on("error", reap);
`;

export interface Reaper {
  readonly pid: number;
  watch(pid: number): void;
  forget(pid: number): void;
  /** Our servers are stopped: let the watchdog exit. */
  close(): void;
}

export function startReaper(): Reaper {
  const child: ChildProcess = spawn(process.execPath, ["-e", REAPER_SOURCE], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  child.on("error", () => {
    // Best effort: without a reaper, normal stop() still works.
  });
  const stdin = child.stdin;
  stdin?.on("error", () => {});
  // Neither the child nor the pipe may keep our event loop alive.
  child.unref();
  (stdin as unknown as Socket | null)?.unref?.();
  const send = (line: string): void => {
    if (stdin && !stdin.destroyed && stdin.writable) stdin.write(`${line}\n`);
  };
  return {
    pid: child.pid ?? -1,
    watch: (pid) => send(`+ ${pid}`),
    forget: (pid) => send(`- ${pid}`),
    close: () => stdin?.end(),
  };
}
