import { afterAll, describe, expect, it } from "vitest";
import { MediaFormatError } from "../formats/errors.js";
import * as files from "../testing/files.js";
import { decodeImage } from "./decode.js";
import { createImagePool } from "./pool.js";
import { TooManyPixelsError } from "./process.js";

const pool = createImagePool(1);
afterAll(() => pool.close());
const options = { maxImagePixels: 1_000_000, thumbnailSize: 16 };

describe("image pool (worker thread)", () => {
  it("strips, measures and thumbnails off the main thread, one job after another", async () => {
    const results = await Promise.all([pool.process("png", files.makePng({ width: 40, height: 30 }), options), pool.process("jpeg", files.makeJpeg({ width: 64, height: 48, orientation: 6 }), options)]);
    expect(results.map((r) => [r.width, r.height])).toEqual([[40, 30], [48, 64]]);
    expect(Buffer.from(results[0]!.bytes).includes(files.SECRET_TEXT)).toBe(false);
    expect(decodeImage("jpeg", Buffer.from(results[1]!.thumbnail), 1e6)).toMatchObject({ width: 12, height: 16 });
  });

  it("reports a corrupt file and an oversized canvas as such", async () => {
    const broken = files.makeWebp({ metadata: false });
    broken.fill(0xff, 25);
    await expect(pool.process("webp", broken, options)).rejects.toBeInstanceOf(MediaFormatError);
    await expect(pool.process("png", files.makePng({ width: 2000, height: 1000, metadata: false }), options)).rejects.toBeInstanceOf(TooManyPixelsError);
    expect((await pool.process("gif", files.makeGif(), options)).width).toBe(32);
  });
});
