// Blobs as files under one folder: <dir>/<h0h1>/<h2h3>/<sha256>. Written to
// the spool folder first and hard-linked into place, so a reader never sees
// half a file and the same file uploaded twice is stored once.
import { createReadStream } from "node:fs";
import { link, mkdir, open, rename, stat, unlink, utimes } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { randomUUID } from "node:crypto";
import { checkBlobName, type BlobInfo, type BlobSource, type BlobStore } from "./blob-store.js";

export async function createLocalBlobStore(dir: string): Promise<BlobStore> {
  const root = resolve(dir);
  const spoolDir = join(root, "spool");
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });

  /** The file of a blob. The name is checked, and the path must stay under root whatever it is. */
  const pathOf = (sha256: string): string => {
    const name = checkBlobName(sha256);
    const path = resolve(root, name.slice(0, 2), name.slice(2, 4), name);
    if (!path.startsWith(root + sep)) throw new Error("blob path escapes the store");
    return path;
  };

  const touch = async (path: string): Promise<boolean> => {
    const now = new Date();
    try {
      await utimes(path, now, now);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  };

  return {
    spoolDir,

    async put(sha256, source: BlobSource) {
      const path = pathOf(sha256);
      if (await touch(path)) return;
      await mkdir(resolve(path, ".."), { recursive: true });
      let from: string;
      let temporary = false;
      if ("path" in source) {
        from = source.path;
      } else {
        from = join(spoolDir, `${randomUUID()}.blob`);
        temporary = true;
        const handle = await open(from, "wx", 0o600);
        try {
          await handle.writeFile(source.bytes);
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      try {
        await link(from, path);
      } catch (err) {
        // Another upload of the same bytes got there first: that file is ours too.
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        await touch(path);
      } finally {
        if (temporary) await unlink(from).catch(() => {});
      }
    },

    async stat(sha256): Promise<BlobInfo | undefined> {
      try {
        const s = await stat(pathOf(sha256));
        return { size: s.size, modifiedMs: s.mtimeMs };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw err;
      }
    },

    read(sha256, start, end, signal) {
      if (end <= start) return (async function* () {})();
      return createReadStream(pathOf(sha256), { start, end: end - 1, highWaterMark: 256 * 1024, ...(signal ? { signal } : {}) });
    },

    async delete(sha256) {
      const path = pathOf(sha256);
      // Renamed aside first, so a reader that opened it keeps its file and a
      // concurrent put links a fresh one.
      const aside = join(spoolDir, `${randomUUID()}.deleted`);
      try {
        await rename(path, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
        throw err;
      }
      await unlink(aside);
    },
  };
}
