// Worker thread body: processes one photo per message (process.ts) and
// answers with the result, its buffers transferred, or with what went wrong.
import { parentPort } from "node:worker_threads";
import { MediaFormatError } from "../formats/errors.js";
import type { ImageFormat } from "../formats/sniff.js";
import { TooManyPixelsError, processImageBytes, type ImageOptions } from "./process.js";

export interface ImageJob {
  readonly id: number;
  readonly format: ImageFormat;
  readonly bytes: Uint8Array;
  readonly options: ImageOptions;
}

export type ImageAnswer =
  | { readonly id: number; readonly ok: true; readonly bytes: Uint8Array; readonly thumbnail: Uint8Array; readonly width: number; readonly height: number }
  | { readonly id: number; readonly ok: false; readonly kind: "format" | "pixels" | "internal"; readonly message: string };

parentPort?.on("message", (job: ImageJob) => {
  try {
    const original = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength);
    const r = processImageBytes(job.format, original, job.options);
    // Own copies, so whole ArrayBuffers can be transferred.
    const bytes = Uint8Array.from(r.bytes);
    const thumbnail = Uint8Array.from(r.thumbnail);
    const answer: ImageAnswer = { id: job.id, ok: true, bytes, thumbnail, width: r.width, height: r.height };
    parentPort!.postMessage(answer, [bytes.buffer, thumbnail.buffer]);
  } catch (err) {
    const kind = err instanceof MediaFormatError ? "format" : err instanceof TooManyPixelsError ? "pixels" : "internal";
    const answer: ImageAnswer = { id: job.id, ok: false, kind, message: err instanceof Error ? err.message : String(err) };
    parentPort!.postMessage(answer);
  }
});
