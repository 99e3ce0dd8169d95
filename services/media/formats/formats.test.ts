import { describe, expect, it } from "vitest";
import { decodeImage } from "../image/decode.js";
import * as files from "../testing/files.js";
import { MediaFormatError } from "./errors.js";
import { parseGif, stripGif } from "./gif.js";
import { exifOrientation, parseJpeg, stripJpeg } from "./jpeg.js";
import { probeMp4 } from "./mp4.js";
import { parsePng, stripPng } from "./png.js";
import { bufferAccess } from "./reader.js";
import { sniff } from "./sniff.js";
import { probeWebm } from "./webm.js";
import { parseWebp, stripWebp } from "./webp.js";

/** No metadata bytes of the fixtures: camera make, comment, GPS values, XMP. */
function expectClean(buf: Buffer): void {
  expect(buf.includes(files.SECRET_MAKE)).toBe(false);
  expect(buf.includes(files.SECRET_TEXT)).toBe(false);
  expect(buf.includes("GPSLatitude")).toBe(false);
  expect(buf.includes("xmpmeta")).toBe(false);
  const lat = Buffer.alloc(4);
  lat.writeUInt32BE(files.GPS_LATITUDE[2]![0]);
  expect(buf.includes(lat)).toBe(false);
}

describe("sniff", () => {
  it("knows each format by its bytes", () => {
    expect(sniff(files.makeJpeg())).toBe("jpeg");
    expect(sniff(files.makePng())).toBe("png");
    expect(sniff(files.makeGif())).toBe("gif");
    expect(sniff(files.makeWebp())).toBe("webp");
    expect(sniff(files.makeMp4())).toBe("mp4");
    expect(sniff(files.makeWebm())).toBe("webm");
  });

  it("refuses anything else: an executable, text, HEIF, QuickTime, Matroska", () => {
    expect(sniff(files.makeElf())).toBeUndefined();
    expect(sniff(Buffer.from("<html><body>hi</body></html>"))).toBeUndefined();
    expect(sniff(Buffer.alloc(0))).toBeUndefined();
    const heic = files.makeMp4();
    heic.write("heic", 8, "latin1");
    heic.write("mif1heic", 16, "latin1");
    heic.write("mif1heic", 24, "latin1");
    expect(sniff(heic)).toBeUndefined();
    const mov = files.makeMp4();
    mov.write("qt  ", 8, "latin1");
    expect(sniff(mov)).toBeUndefined();
    const mkv = files.makeWebm();
    const at = mkv.indexOf("webm");
    const matroska = Buffer.concat([mkv.subarray(0, at - 8), Buffer.from([0x01, 0, 0, 0, 0, 0, 0, 8]), Buffer.from("matroska"), mkv.subarray(at + 4)]);
    matroska.writeUInt8(0x01, 4);
    expect(sniff(matroska)).toBeUndefined();
  });
});

describe("JPEG", () => {
  it("reads the size and orientation, and strips EXIF, XMP and comments but keeps the orientation", () => {
    const jpeg = files.makeJpeg({ width: 64, height: 48, orientation: 6 });
    expect(parseJpeg(jpeg)).toEqual({ width: 64, height: 48, orientation: 6 });
    expect(jpeg.includes(files.SECRET_MAKE)).toBe(true);
    const clean = stripJpeg(jpeg, 6);
    expectClean(clean);
    expect(parseJpeg(clean)).toEqual({ width: 64, height: 48, orientation: 6 });
    const app1 = clean.indexOf("Exif\0\0");
    expect(exifOrientation(clean.subarray(app1, app1 + 32))).toBe(6);
    expect(decodeImage("jpeg", clean, 1e6)).toMatchObject({ width: 64, height: 48 });
    expect(stripJpeg(files.makeJpeg(), 1).includes("Exif")).toBe(false);
  });

  it("refuses a truncated or corrupt file", () => {
    const jpeg = files.makeJpeg();
    expect(() => parseJpeg(jpeg.subarray(0, jpeg.length - 200))).toThrow(MediaFormatError);
    expect(() => parseJpeg(jpeg.subarray(0, 400))).toThrow(MediaFormatError);
    const garbage = Buffer.concat([jpeg.subarray(0, 20), Buffer.alloc(500, 0x41)]);
    expect(() => parseJpeg(garbage)).toThrow(MediaFormatError);
  });
});

describe("PNG", () => {
  it("reads the size and keeps only the chunks that draw", () => {
    const png = files.makePng({ width: 40, height: 30 });
    expect(parsePng(png)).toEqual({ width: 40, height: 30 });
    const clean = stripPng(png);
    expectClean(clean);
    expect(clean.includes("tEXt")).toBe(false);
    expect(clean.includes("eXIf")).toBe(false);
    expect(decodeImage("png", clean, 1e6)).toMatchObject({ width: 40, height: 30 });
  });

  it("refuses a bad checksum or a missing IEND", () => {
    const png = files.makePng();
    const bad = Buffer.from(png);
    const at = bad.indexOf("IDAT") + 10;
    bad[at] = bad[at]! ^ 0xff;
    expect(() => parsePng(bad)).toThrow(MediaFormatError);
    expect(() => parsePng(png.subarray(0, png.length - 12))).toThrow(MediaFormatError);
  });
});

describe("GIF", () => {
  it("reads the size and drops comments and XMP, keeping the loop", () => {
    const gif = files.makeGif({ width: 32, height: 20 });
    expect(parseGif(gif)).toEqual({ width: 32, height: 20, frames: 2 });
    const clean = stripGif(gif);
    expectClean(clean);
    expect(clean.includes("XMP DataXMP")).toBe(false);
    expect(clean.includes("NETSCAPE2.0")).toBe(true);
    expect(parseGif(clean).frames).toBe(2);
    expect(decodeImage("gif", clean, 1e6)).toMatchObject({ width: 32, height: 20 });
  });

  it("refuses a file without its trailer", () => {
    const gif = files.makeGif({ metadata: false });
    expect(() => parseGif(gif.subarray(0, gif.length - 1))).toThrow(MediaFormatError);
    expect(() => parseGif(gif.subarray(0, gif.length - 40))).toThrow(MediaFormatError);
  });
});

describe("WebP", () => {
  it("reads the canvas size and drops EXIF and XMP with their flags", () => {
    const webp = files.makeWebp({ width: 50, height: 20, argb: [255, 10, 20, 30] });
    expect(parseWebp(webp)).toEqual({ width: 50, height: 20 });
    const clean = stripWebp(webp);
    expectClean(clean);
    expect(clean[20]! & 0x0c).toBe(0);
    expect(clean.readUInt32LE(4)).toBe(clean.length - 8);
    const pixels = decodeImage("webp", clean, 1e6);
    expect(pixels).toMatchObject({ width: 50, height: 20 });
    expect(Array.from(pixels.data.subarray(0, 4))).toEqual([10, 20, 30, 255]);
    expect(parseWebp(files.makeWebp({ width: 7, height: 9, metadata: false }))).toEqual({ width: 7, height: 9 });
  });

  it("refuses a truncated file and undecodable image data", () => {
    const webp = files.makeWebp();
    expect(() => parseWebp(webp.subarray(0, webp.length - 10))).toThrow(MediaFormatError);
    const broken = files.makeWebp({ metadata: false });
    broken.fill(0xff, 25);
    expect(() => decodeImage("webp", broken, 1e6)).toThrow(MediaFormatError);
  });
});

describe("MP4", () => {
  it("reads mvhd's duration and the video track's size, with moov first or last", async () => {
    for (const moovFirst of [true, false]) {
      const mp4 = files.makeMp4({ width: 640, height: 360, durationMs: 3500, moovFirst });
      expect(await probeMp4(bufferAccess(mp4))).toEqual({ durationMs: 3500, width: 640, height: 360 });
    }
  });

  it("refuses a file cut short", async () => {
    const mp4 = files.makeMp4({ mediaBytes: 10_000 });
    await expect(probeMp4(bufferAccess(mp4.subarray(0, mp4.length - 1)))).rejects.toThrow(MediaFormatError);
    const last = files.makeMp4({ moovFirst: false });
    await expect(probeMp4(bufferAccess(last.subarray(0, last.length - 50)))).rejects.toThrow(MediaFormatError);
  });
});

describe("WebM", () => {
  it("reads the duration and the video track's pixel size", async () => {
    expect(await probeWebm(bufferAccess(files.makeWebm({ width: 320, height: 240, durationMs: 2250 })))).toEqual({ durationMs: 2250, width: 320, height: 240 });
  });

  it("refuses a file cut short", async () => {
    const webm = files.makeWebm();
    await expect(probeWebm(bufferAccess(webm.subarray(0, webm.length - 1)))).rejects.toThrow(MediaFormatError);
    await expect(probeWebm(bufferAccess(webm.subarray(0, 200)))).rejects.toThrow(MediaFormatError);
  });
});
