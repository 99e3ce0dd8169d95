// Runs the `chirp` command (bin/chirp.js) as a user would, for the CLI's tests.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { vi } from "vitest";
import { main } from "../main.js";

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

/**
 * `chirp <args>` as main() in this process, with what it writes captured: what
 * bin/chirp.js runs, without a Node start and tsx per run (a third to most of
 * a second of CPU each). One at a time: the capture is of this process's
 * stdout and stderr.
 */
export async function runChirpInProcess(args: readonly string[]): Promise<ChirpRun> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** Several runs in this process, one after another. */
export async function runChirpInProcessEach(runs: ReadonlyArray<readonly string[]>): Promise<ChirpRun[]> {
  const results: ChirpRun[] = [];
  for (const args of runs) results.push(await runChirpInProcess(args));
  return results;
}
