import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BlobStore } from "./blob-store.js";
import { createLocalBlobStore } from "./local.js";

let dir: string;
let store: BlobStore;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chirp-blobs-"));
  store = await createLocalBlobStore(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe("local blob store", () => {
  it("stores by content hash, reads ranges, stores a duplicate once and deletes", async () => {
    const bytes = Buffer.from("hello, content-addressed world");
    const name = sha(bytes);
    await store.put(name, { bytes }, bytes.length);
    expect(await store.stat(name)).toMatchObject({ size: bytes.length });
    expect(await readAll(store.read(name, 0, bytes.length))).toEqual(bytes);
    expect((await readAll(store.read(name, 7, 14))).toString()).toBe("content");

    const spooled = join(store.spoolDir, "upload.tmp");
    await writeFile(spooled, bytes);
    await store.put(name, { path: spooled }, bytes.length);
    expect((await readdir(join(dir, name.slice(0, 2), name.slice(2, 4))))).toEqual([name]);

    await store.delete(name);
    expect(await store.stat(name)).toBeUndefined();
    await store.delete(name);
  });

  it("refuses any name that is not a SHA-256, so no path can leave the store", async () => {
    for (const bad of ["../../etc/passwd", "..", "/etc/passwd", "A".repeat(64), `${"a".repeat(63)}/`, "a".repeat(65), ""]) {
      await expect(store.stat(bad)).rejects.toThrow();
      await expect(store.put(bad, { bytes: Buffer.from("x") }, 1)).rejects.toThrow();
      expect(() => store.read(bad, 0, 1)).toThrow();
      await expect(store.delete(bad)).rejects.toThrow();
    }
  });
});
