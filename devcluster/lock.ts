// One Chirp per data dir: a pid lock file, taken over when its owner is dead.
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { isAlive } from "./process.js";

export const LOCK_FILE = "chirp.lock";

export class DataDirLockedError extends Error {
  override readonly name = "DataDirLockedError";
  readonly code = "DATA_DIR_LOCKED";
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`Chirp is already running (pid ${pid}) using ${dir}; stop it first`);
  }
}

export interface DataDirLock {
  readonly dir: string;
  readonly path: string;
  /** Removes the lock file if it is still ours. Synchronous so it can run in an exit hook. */
  release(): void;
}

interface LockContent {
  pid: number;
  host: string;
  since: string;
}

export function acquireDataDirLock(dir: string): DataDirLock {
  const absDir = resolve(dir);
  mkdirSync(absDir, { recursive: true, mode: 0o700 });
  const path = join(absDir, LOCK_FILE);
  const mine: LockContent = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  const text = `${JSON.stringify(mine)}\n`;

  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      writeFileSync(path, text, { flag: "wx", mode: 0o644 });
      return makeLock(absDir, path, text);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let existing: string;
    try {
      existing = readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // released meanwhile
      throw err;
    }
    const owner = parseLock(existing);
    if (owner && isAlive(owner.pid)) throw new DataDirLockedError(absDir, owner.pid);
    if (!owner && attempt === 0) {
      // Maybe caught between another starter's create and write: look again.
      sleepSync(100);
      continue;
    }
    // Stale (owner dead) or unreadable: take it over, but only if nobody else
    // replaced it since we read it.
    try {
      if (readFileSync(path, "utf8") === existing) unlinkSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  throw new Error(`could not take the lock ${path}`);
}

function makeLock(dir: string, path: string, text: string): DataDirLock {
  let held = true;
  return {
    dir,
    path,
    release() {
      if (!held) return;
      held = false;
      try {
        if (readFileSync(path, "utf8") === text) unlinkSync(path);
      } catch {
        // Already gone: nothing to release.
      }
    },
  };
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function parseLock(text: string): LockContent | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockContent>;
    return typeof v.pid === "number" && Number.isInteger(v.pid) && v.pid > 0 ? (v as LockContent) : undefined;
  } catch {
    return undefined;
  }
}
