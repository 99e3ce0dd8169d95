// Pixels of an image, for its thumbnail: pure-JS codecs for JPEG (jpeg-js),
// PNG (pngjs) and GIF (omggif, first frame), and libwebp compiled to wasm and
// shipped inside @cwasm/webp for WebP. None downloads anything at install.
import { decode as decodeWebpPixels } from "@cwasm/webp";
import { decode as decodeJpegPixels } from "jpeg-js";
import { GifReader } from "omggif";
import { PNG } from "pngjs";
import { MediaFormatError } from "../formats/errors.js";
import type { ImageFormat } from "../formats/sniff.js";

export interface Rgba {
  readonly width: number;
  readonly height: number;
  /** width * height * 4 bytes, rows top to bottom. */
  readonly data: Uint8Array;
}

/**
 * Decodes `bytes` (already parsed: the header's size is within the pixel
 * limit). A decoder's failure is the file's fault: MediaFormatError.
 */
export function decodeImage(format: ImageFormat, bytes: Buffer, maxPixels: number): Rgba {
  try {
    switch (format) {
      case "jpeg": {
        const img = decodeJpegPixels(bytes, {
          useTArray: true,
          formatAsRGBA: true,
          // A corrupt file must fail rather than decode to grey blocks.
          tolerantDecoding: false,
          maxResolutionInMP: Math.ceil(maxPixels / 1_000_000),
          maxMemoryUsageInMB: Math.ceil((maxPixels * 4 * 2) / (1024 * 1024)) + 64,
        });
        return { width: img.width, height: img.height, data: img.data };
      }
      case "png": {
        const img = PNG.sync.read(bytes);
        return { width: img.width, height: img.height, data: img.data };
      }
      case "gif": {
        const reader = new GifReader(bytes);
        const data = new Uint8Array(reader.width * reader.height * 4);
        reader.decodeAndBlitFrameRGBA(0, data);
        return { width: reader.width, height: reader.height, data };
      }
      case "webp": {
        const img = decodeWebpPixels(bytes);
        return { width: img.width, height: img.height, data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength) };
      }
    }
  } catch (err) {
    if (err instanceof MediaFormatError) throw err;
    throw new MediaFormatError(`${format}: image data does not decode`, { cause: err });
  }
}
