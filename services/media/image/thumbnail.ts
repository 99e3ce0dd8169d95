// A small JPEG preview: downscale by area averaging, turn upright by the
// EXIF orientation, put transparency on white, encode.
import { encode as encodeJpeg } from "jpeg-js";
import type { Rgba } from "./decode.js";

/**
 * The size `width` x `height` fits in `maxSide` (never enlarged). Both at
 * least 1.
 */
export function fitWithin(width: number, height: number, maxSide: number): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Box-filter downscale: every source pixel adds into the one target pixel it
 * falls in, so each target pixel is the mean of its area (one pass over the
 * source, no aliasing from skipped pixels). Alpha is composited onto white.
 */
export function downscale(src: Rgba, width: number, height: number): Rgba {
  const sums = new Float64Array(width * height * 3);
  const counts = new Uint32Array(width * height);
  const xMap = new Uint32Array(src.width);
  for (let x = 0; x < src.width; x++) xMap[x] = Math.min(width - 1, Math.floor((x * width) / src.width));
  for (let y = 0; y < src.height; y++) {
    const row = Math.min(height - 1, Math.floor((y * height) / src.height)) * width;
    let p = y * src.width * 4;
    for (let x = 0; x < src.width; x++, p += 4) {
      const t = row + xMap[x]!;
      const a = src.data[p + 3]! / 255;
      const white = 255 * (1 - a);
      sums[t * 3] = sums[t * 3]! + src.data[p]! * a + white;
      sums[t * 3 + 1] = sums[t * 3 + 1]! + src.data[p + 1]! * a + white;
      sums[t * 3 + 2] = sums[t * 3 + 2]! + src.data[p + 2]! * a + white;
      counts[t] = counts[t]! + 1;
    }
  }
  const data = new Uint8Array(width * height * 4);
  for (let t = 0; t < width * height; t++) {
    const n = counts[t] || 1;
    data[t * 4] = Math.round(sums[t * 3]! / n);
    data[t * 4 + 1] = Math.round(sums[t * 3 + 1]! / n);
    data[t * 4 + 2] = Math.round(sums[t * 3 + 2]! / n);
    data[t * 4 + 3] = 255;
  }
  return { width, height, data };
}

/** The image turned as EXIF orientation `o` (1-8) says it must be shown. */
export function orient(img: Rgba, o: number): Rgba {
  if (o <= 1 || o > 8) return img;
  const { width: w, height: h } = img;
  const swap = o >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const data = new Uint8Array(img.data.length);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let sx: number;
      let sy: number;
      switch (o) {
        case 2: [sx, sy] = [w - 1 - x, y]; break;
        case 3: [sx, sy] = [w - 1 - x, h - 1 - y]; break;
        case 4: [sx, sy] = [x, h - 1 - y]; break;
        case 5: [sx, sy] = [y, x]; break;
        case 6: [sx, sy] = [y, h - 1 - x]; break;
        case 7: [sx, sy] = [w - 1 - y, h - 1 - x]; break;
        default: [sx, sy] = [w - 1 - y, x]; break; // 8
      }
      const s = (sy * w + sx) * 4;
      const d = (y * ow + x) * 4;
      data[d] = img.data[s]!;
      data[d + 1] = img.data[s + 1]!;
      data[d + 2] = img.data[s + 2]!;
      data[d + 3] = img.data[s + 3]!;
    }
  }
  return { width: ow, height: oh, data };
}

export function makeThumbnail(img: Rgba, orientation: number, maxSide: number, quality = 80): Buffer {
  const size = fitWithin(img.width, img.height, maxSide);
  const small = orient(downscale(img, size.width, size.height), orientation);
  return encodeJpeg({ width: small.width, height: small.height, data: small.data }, quality).data;
}
