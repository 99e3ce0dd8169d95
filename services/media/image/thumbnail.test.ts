import { describe, expect, it } from "vitest";
import { decodeImage } from "./decode.js";
import type { Rgba } from "./decode.js";
import { downscale, fitWithin, makeThumbnail, orient } from "./thumbnail.js";

function image(width: number, height: number, pixel: (x: number, y: number) => [number, number, number, number]): Rgba {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 4);
  return { width, height, data };
}

describe("thumbnails", () => {
  it("fit the longer side, never enlarge", () => {
    expect(fitWithin(4000, 3000, 320)).toEqual({ width: 320, height: 240 });
    expect(fitWithin(100, 5000, 320)).toEqual({ width: 6, height: 320 });
    expect(fitWithin(10, 10, 320)).toEqual({ width: 10, height: 10 });
  });

  it("average each area, with transparency on white", () => {
    const checker = image(4, 4, (x, y) => ((x + y) % 2 === 0 ? [0, 0, 0, 255] : [255, 255, 255, 255]));
    expect(Array.from(downscale(checker, 1, 1).data)).toEqual([128, 128, 128, 255]);
    const clear = image(2, 2, () => [0, 0, 0, 0]);
    expect(Array.from(downscale(clear, 1, 1).data)).toEqual([255, 255, 255, 255]);
  });

  it("turn upright by the EXIF orientation", () => {
    // 2x1: red then blue. Orientation 6 (rotate 90° clockwise) makes it 1x2, red on top.
    const img = image(2, 1, (x) => (x === 0 ? [255, 0, 0, 255] : [0, 0, 255, 255]));
    const turned = orient(img, 6);
    expect([turned.width, turned.height]).toEqual([1, 2]);
    expect(Array.from(turned.data)).toEqual([255, 0, 0, 255, 0, 0, 255, 255]);
    expect(Array.from(orient(img, 8).data)).toEqual([0, 0, 255, 255, 255, 0, 0, 255]);
    expect(Array.from(orient(img, 2).data)).toEqual([0, 0, 255, 255, 255, 0, 0, 255]);
  });

  it("are JPEGs of the fitted, upright size", () => {
    const big = image(800, 400, (x) => [x % 256, 0, 0, 255]);
    const thumb = makeThumbnail(big, 6, 320);
    expect(thumb.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect(decodeImage("jpeg", thumb, 1e6)).toMatchObject({ width: 160, height: 320 });
  });
});
