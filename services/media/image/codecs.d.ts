// Types for the two codec packages that ship none (only what this service uses).

declare module "pngjs" {
  export interface PngImage {
    width: number;
    height: number;
    /** RGBA, 8 bits per channel, whatever the file's depth and colour type. */
    data: Buffer;
  }
  export const PNG: {
    sync: {
      read(buffer: Buffer, options?: { checkCRC?: boolean; skipRescale?: boolean }): PngImage;
      write(png: { width: number; height: number; data: Buffer | Uint8Array }, options?: { colorType?: number }): Buffer;
    };
  };
}

declare module "omggif" {
  export class GifReader {
    constructor(buf: Uint8Array);
    readonly width: number;
    readonly height: number;
    numFrames(): number;
    decodeAndBlitFrameRGBA(frame: number, pixels: Uint8Array | Uint8ClampedArray): void;
  }
  export class GifWriter {
    constructor(buf: Uint8Array, width: number, height: number, options?: { palette?: number[]; loop?: number });
    addFrame(x: number, y: number, w: number, h: number, indexed: Uint8Array | number[], options?: { palette?: number[]; delay?: number }): number;
    end(): number;
  }
}
