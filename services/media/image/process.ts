// The CPU-heavy part of storing a photo, in one synchronous function so it can
// run in a worker thread (pool.ts): check the structure, strip the metadata,
// decode, make the thumbnail.
import { MediaFormatError } from "../formats/errors.js";
import { parseGif, stripGif } from "../formats/gif.js";
import { parseJpeg, stripJpeg } from "../formats/jpeg.js";
import { parsePng, stripPng } from "../formats/png.js";
import type { ImageFormat } from "../formats/sniff.js";
import { parseWebp, stripWebp } from "../formats/webp.js";
import { decodeImage } from "./decode.js";
import { makeThumbnail } from "./thumbnail.js";

export interface ImageOptions {
  readonly maxImagePixels: number;
  readonly thumbnailSize: number;
}

export interface ImageResult {
  /** The file as served: metadata stripped. */
  readonly bytes: Uint8Array;
  /** As displayed (EXIF orientation applied). */
  readonly width: number;
  readonly height: number;
  /** JPEG. */
  readonly thumbnail: Uint8Array;
}

/** An image that declares more pixels than allowed; checked before decoding. */
export class TooManyPixelsError extends Error {
  override readonly name = "TooManyPixelsError";
}

export function processImageBytes(format: ImageFormat, original: Buffer, options: ImageOptions): ImageResult {
  let width: number;
  let height: number;
  let orientation = 1;
  let parsed: () => Buffer;
  switch (format) {
    case "jpeg": {
      const info = parseJpeg(original);
      ({ width, height, orientation } = info);
      parsed = () => stripJpeg(original, orientation);
      break;
    }
    case "png":
      ({ width, height } = parsePng(original));
      parsed = () => stripPng(original);
      break;
    case "gif":
      ({ width, height } = parseGif(original));
      parsed = () => stripGif(original);
      break;
    case "webp":
      ({ width, height } = parseWebp(original));
      parsed = () => stripWebp(original);
      break;
  }
  if (width * height > options.maxImagePixels) throw new TooManyPixelsError(`image larger than ${options.maxImagePixels} pixels`);
  const bytes = parsed();
  const pixels = decodeImage(format, bytes, options.maxImagePixels);
  if (pixels.width !== width || pixels.height !== height) throw new MediaFormatError(`${format}: image data does not match its header`);
  const thumbnail = makeThumbnail(pixels, orientation, options.thumbnailSize);
  const turned = orientation >= 5;
  return { bytes, width: turned ? height : width, height: turned ? width : height, thumbnail };
}
