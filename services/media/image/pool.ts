// A few worker threads for photo processing (decode + thumbnail is pure-JS
// CPU work: about 2 s for a 12 MP JPEG), so the media process's event loop
// keeps answering other calls meanwhile. Jobs queue for a free worker; a
// worker that dies fails its job (Internal) and is replaced.
import { Worker } from "node:worker_threads";
import { MediaFormatError } from "../formats/errors.js";
import type { ImageFormat } from "../formats/sniff.js";
import { TooManyPixelsError, processImageBytes, type ImageOptions, type ImageResult } from "./process.js";
import type { ImageAnswer, ImageJob } from "./worker.js";

export interface ImagePool {
  process(format: ImageFormat, original: Buffer, options: ImageOptions): Promise<ImageResult>;
  close(): Promise<void>;
}

/** `size` 0: no threads, everything on the calling thread. */
export function createImagePool(size: number): ImagePool {
  if (size === 0) {
    return { process: async (format, original, options) => processImageBytes(format, original, options), close: async () => {} };
  }
  interface Pending {
    readonly job: ImageJob;
    readonly resolve: (r: ImageResult) => void;
    readonly reject: (err: Error) => void;
  }
  interface Slot {
    worker: Worker;
    busy: Pending | undefined;
  }
  const queue: Pending[] = [];
  const slots: Slot[] = [];
  let nextId = 1;
  let closed = false;

  const spawn = (): Slot => {
    const slot: Slot = { worker: new Worker(new URL("./worker-entry.mjs", import.meta.url)), busy: undefined };
    slot.worker.on("message", (answer: ImageAnswer) => {
      const p = slot.busy;
      slot.busy = undefined;
      if (p !== undefined && p.job.id === answer.id) {
        if (answer.ok) p.resolve({ bytes: answer.bytes, thumbnail: answer.thumbnail, width: answer.width, height: answer.height });
        else if (answer.kind === "format") p.reject(new MediaFormatError(answer.message));
        else if (answer.kind === "pixels") p.reject(new TooManyPixelsError(answer.message));
        else p.reject(new Error(`image worker: ${answer.message}`));
      }
      pump();
    });
    const lost = (err: Error): void => {
      const at = slots.indexOf(slot);
      if (at < 0) return; // already replaced ("error" is followed by "exit")
      slots.splice(at, 1);
      slot.busy?.reject(err);
      slot.busy = undefined;
      if (!closed) {
        slots.push(spawn());
        pump();
      }
    };
    slot.worker.once("error", lost);
    slot.worker.once("exit", (code) => lost(new Error(`image worker exited (${code})`)));
    return slot;
  };

  const pump = (): void => {
    for (const slot of slots) {
      if (slot.busy !== undefined) continue;
      const next = queue.shift();
      if (next === undefined) return;
      slot.busy = next;
      slot.worker.postMessage(next.job);
    }
  };

  for (let i = 0; i < size; i++) slots.push(spawn());

  return {
    process(format, original, options) {
      if (closed) return Promise.reject(new Error("image pool closed"));
      return new Promise<ImageResult>((resolve, reject) => {
        queue.push({ job: { id: nextId++, format, bytes: original, options }, resolve, reject });
        pump();
      });
    },
    async close() {
      closed = true;
      for (const p of queue.splice(0)) p.reject(new Error("image pool closed"));
      await Promise.all(slots.map((s) => s.worker.terminate()));
    },
  };
}
