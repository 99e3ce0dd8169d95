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
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import type { Compression } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

export const GZIP_LEVEL = 1;
export const BROTLI_QUALITY = 4;

export const fastGzip: Compression = {
  name: compressionGzip.name,
  compress: (bytes) => gzip(bytes, { level: GZIP_LEVEL }),
  decompress: compressionGzip.decompress,
};

export const fastBrotli: Compression = {
  name: compressionBrotli.name,
  compress: (bytes) => brotli(bytes, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY } }),
  decompress: compressionBrotli.decompress,
};
