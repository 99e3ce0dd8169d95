// Runs the `chirp` command (bin/chirp.js) as a user would, for the CLI's tests.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../../bin/chirp.js", import.meta.url));

export interface ChirpRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `chirp <args>` in a child process; its exit code and everything it printed. */
export function runChirp(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<ChirpRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], ...(env === undefined ? {} : { env }) });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
