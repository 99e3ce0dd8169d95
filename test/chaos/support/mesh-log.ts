// The fault tests' mesh writes its log to a file (not the test's output);
// a failed test prints the file's last lines, the services' own account.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFailed } from "vitest";

export interface MeshLog {
  /** The file descriptor to give the mesh as its stdio. */
  open(): number;
  /** From a test: on its failure, print the log's last 60 lines. */
  showOnFailure(): void;
  /** Closes and deletes the log. */
  remove(): void;
}

export function meshLog(): MeshLog {
  const dir = mkdtempSync(join(tmpdir(), "chirp-chaos-"));
  const path = join(dir, "mesh.log");
  let fd: number | undefined;
  return {
    open() {
      fd ??= openSync(path, "a");
      return fd;
    },
    showOnFailure() {
      onTestFailed(() => {
        console.error(`--- last lines of the mesh's log ---\n${readFileSync(path, "utf8").split("\n").slice(-60).join("\n")}`);
      });
    },
    remove() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
