// What the media service reads from its environment beyond every service's
// settings (service-config.ts) and the database's (shard/config.ts).
import { fileURLToPath } from "node:url";
import { EnvReader, type Env } from "../../lib/config.js";

export interface MediaConfig {
  /** CHIRP_MEDIA_DIR: the local blob store (files named by SHA-256), and where uploads are spooled (with S3 too). */
  readonly dir: string;
  /** Blobs in an S3-compatible bucket instead of `dir` (CHIRP_MEDIA_S3_*). */
  readonly s3: S3Config | undefined;
  /** CHIRP_MEDIA_MAX_IMAGE_BYTES: the largest photo accepted, enforced while the upload streams. */
  readonly maxImageBytes: number;
  /** CHIRP_MEDIA_MAX_VIDEO_BYTES: the largest video accepted, enforced while the upload streams. */
  readonly maxVideoBytes: number;
  /** CHIRP_MEDIA_MAX_IMAGE_PIXELS: width x height an image may declare before it is decoded. */
  readonly maxImagePixels: number;
  /** CHIRP_MEDIA_IMAGE_WORKERS: worker threads that decode photos and make thumbnails (0: on the event loop). */
  readonly imageWorkers: number;
  /** CHIRP_MEDIA_THUMBNAIL_SIZE: the thumbnail's longer side in pixels. */
  readonly thumbnailSize: number;
  /** CHIRP_MEDIA_UNATTACHED_GRACE_MS: how long an upload may stay off every tweet before the sweep removes it. */
  readonly unattachedGraceMs: number;
  /** CHIRP_MEDIA_SWEEP_INTERVAL_MS: how often the sweep of unattached uploads runs (0 turns it off). */
  readonly sweepIntervalMs: number;
  /** CHIRP_MEDIA_SWEEP_BATCH: rows per shard per round of that sweep. */
  readonly sweepBatch: number;
}

export interface S3Config {
  /**
   * CHIRP_MEDIA_S3_BUCKET: keep blobs in this S3-compatible bucket instead of
   * CHIRP_MEDIA_DIR. Not tested against a real S3 (services/media/README.md).
   */
  readonly bucket: string;
  /**
   * CHIRP_MEDIA_S3_ENDPOINT: with CHIRP_MEDIA_S3_BUCKET, the S3 endpoint,
   * e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000 (no
   * path; requests are path-style). Default: AWS in CHIRP_MEDIA_S3_REGION.
   */
  readonly endpoint: string;
  /** CHIRP_MEDIA_S3_REGION: with CHIRP_MEDIA_S3_BUCKET, the bucket's region (requests are signed for it). */
  readonly region: string;
  /** CHIRP_MEDIA_S3_ACCESS_KEY_ID: with CHIRP_MEDIA_S3_BUCKET, the access key id requests are signed with. */
  readonly accessKeyId: string;
  /** CHIRP_MEDIA_S3_SECRET_ACCESS_KEY: with CHIRP_MEDIA_S3_BUCKET, that key's secret. */
  readonly secretAccessKey: string;
  /** CHIRP_MEDIA_S3_PREFIX: with CHIRP_MEDIA_S3_BUCKET, the key prefix of the blobs inside the bucket. */
  readonly prefix: string;
}

const MiB = 1024 * 1024;

/** The local data dir's media folder (`npm start` keeps its servers' data in .data/local). */
export const DEFAULT_MEDIA_DIR = fileURLToPath(new URL("../../.data/local/media/", import.meta.url));

export const MEDIA_DEFAULTS = {
  maxImageBytes: 16 * MiB,
  maxVideoBytes: 100 * MiB,
  maxImagePixels: 50_000_000,
  thumbnailSize: 320,
  imageWorkers: 1,
  unattachedGraceMs: 24 * 3600 * 1000,
  sweepIntervalMs: 10 * 60 * 1000,
  sweepBatch: 200,
} as const;

export function loadMediaConfig(env: Env): MediaConfig {
  const read = new EnvReader(env);
  const bucket = read.optional("CHIRP_MEDIA_S3_BUCKET");
  const problems: string[] = [];
  let s3: S3Config | undefined;
  if (bucket !== undefined) {
    const region = read.string("CHIRP_MEDIA_S3_REGION", "us-east-1");
    const endpoint = read.string("CHIRP_MEDIA_S3_ENDPOINT", `https://s3.${region}.amazonaws.com`).replace(/\/+$/, "");
    if (!/^https?:\/\/[^/]+$/.test(endpoint)) problems.push("CHIRP_MEDIA_S3_ENDPOINT must be http(s)://host[:port] without a path");
    s3 = {
      endpoint,
      bucket,
      region,
      accessKeyId: read.string("CHIRP_MEDIA_S3_ACCESS_KEY_ID"),
      secretAccessKey: read.string("CHIRP_MEDIA_S3_SECRET_ACCESS_KEY"),
      prefix: read.string("CHIRP_MEDIA_S3_PREFIX", "media/"),
    };
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) problems.push("CHIRP_MEDIA_S3_BUCKET is not a valid bucket name");
    if (!/^[A-Za-z0-9!_.*'()/-]*$/.test(s3.prefix)) problems.push("CHIRP_MEDIA_S3_PREFIX may hold only letters, digits and !_.*'()/-");
  }
  const config: MediaConfig = {
    dir: read.string("CHIRP_MEDIA_DIR", DEFAULT_MEDIA_DIR),
    s3,
    maxImageBytes: read.int("CHIRP_MEDIA_MAX_IMAGE_BYTES", MEDIA_DEFAULTS.maxImageBytes, 1024, 1024 * MiB),
    maxVideoBytes: read.int("CHIRP_MEDIA_MAX_VIDEO_BYTES", MEDIA_DEFAULTS.maxVideoBytes, 1024, 16 * 1024 * MiB),
    maxImagePixels: read.int("CHIRP_MEDIA_MAX_IMAGE_PIXELS", MEDIA_DEFAULTS.maxImagePixels, 1, 200_000_000),
    imageWorkers: read.int("CHIRP_MEDIA_IMAGE_WORKERS", MEDIA_DEFAULTS.imageWorkers, 0, 64),
    thumbnailSize: read.int("CHIRP_MEDIA_THUMBNAIL_SIZE", MEDIA_DEFAULTS.thumbnailSize, 16, 2048),
    unattachedGraceMs: read.int("CHIRP_MEDIA_UNATTACHED_GRACE_MS", MEDIA_DEFAULTS.unattachedGraceMs, 1000, 365 * 24 * 3600 * 1000),
    sweepIntervalMs: read.int("CHIRP_MEDIA_SWEEP_INTERVAL_MS", MEDIA_DEFAULTS.sweepIntervalMs, 0, 24 * 3600 * 1000),
    sweepBatch: read.int("CHIRP_MEDIA_SWEEP_BATCH", MEDIA_DEFAULTS.sweepBatch, 1, 10_000),
  };
  read.done(problems);
  return config;
}
