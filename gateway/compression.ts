// Response compression for the public API, tuned for answers made per request.
//
// connect-node's gzip and brotli use zlib's defaults: gzip level 6 and brotli
// quality 11, the setting for files compressed once and served many times. For
// a timeline page compressed on every read that was 5 % of the gateway's CPU
// (gzip alone, profiled on home reads), and brotli 11 is many times that for
// any client that lists "br" first. Like nginx (gzip_comp_level 1) and CDNs
// compressing dynamic answers (brotli 4), the gateway compresses fast:
// JSON timeline pages shrink nearly as much at either setting. Decompressing
// requests is connect-node's own (with its size limit).
//
// Answers up to SYNC_MAX_BYTES are compressed on the event loop (gzipSync):
// zlib's asynchronous API hands every call to the thread pool and back (a
// futex wake, an eventfd write, a callback) and builds a stream around it,
// which for a 5 KB timeline page cost 68-84 µs of CPU against 17-22 µs done
// synchronously (a scratch loop of 5,000 calls, Node 20). Larger answers go
// to the thread pool, so one big body never holds the loop for long (about
// 4 µs per KiB at gzip level 1).
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import type { Compression } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

export const GZIP_LEVEL = 1;
export const BROTLI_QUALITY = 4;
/** Bodies up to this size are compressed synchronously (see the top of this file). */
export const SYNC_MAX_BYTES = 64 * 1024;

const GZIP_OPTIONS: zlib.ZlibOptions = { level: GZIP_LEVEL };
const BROTLI_OPTIONS: zlib.BrotliOptions = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY } };

/** `sync(bytes)` for small bodies, `async(bytes)` in the thread pool for large ones; a throw becomes a rejection either way. */
function compressor(sync: (b: Uint8Array) => Uint8Array<ArrayBuffer>, async: (b: Uint8Array) => Promise<Uint8Array<ArrayBuffer>>): Compression["compress"] {
  return (bytes) => {
    if (bytes.byteLength > SYNC_MAX_BYTES) return async(bytes);
    try {
      return Promise.resolve(sync(bytes));
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

export const fastGzip: Compression = {
  name: compressionGzip.name,
  compress: compressor(
    (b) => zlib.gzipSync(b, GZIP_OPTIONS),
    (b) => gzip(b, GZIP_OPTIONS),
  ),
  decompress: compressionGzip.decompress,
};

export const fastBrotli: Compression = {
  name: compressionBrotli.name,
  compress: compressor(
    (b) => zlib.brotliCompressSync(b, BROTLI_OPTIONS),
    (b) => brotli(b, BROTLI_OPTIONS),
  ),
  decompress: compressionBrotli.decompress,
};
