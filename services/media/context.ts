import { mkdir } from "node:fs/promises";
import { Counter } from "prom-client";
import type { ServiceContext } from "../../lib/service-context.js";
import type { EventConsumer } from "../../lib/events/consumer.js";
import { consumeUserDeleted } from "../../lib/events/user-deleted.js";
import type { BlobStore } from "./blobs/blob-store.js";
import { createLocalBlobStore } from "./blobs/local.js";
import { createS3BlobStore } from "./blobs/s3.js";
import { loadMediaConfig, type MediaConfig } from "./config.js";
import { createImagePool, type ImagePool } from "./image/pool.js";
import { createMediaStore, type MediaStore } from "./store.js";
import { createSweeper, type Sweeper } from "./sweep.js";

/** The shared service context plus the media store, the blob store and the sweep of unattached uploads. */
export interface MediaContext extends ServiceContext {
  readonly media: MediaConfig;
  readonly store: MediaStore;
  readonly blobs: BlobStore;
  readonly sweeper: Sweeper;
  /** Worker threads for photo decoding and thumbnails. */
  readonly images: ImagePool;
  /** Uploads by kind (image, video, unknown) and result (ok, or the error code). */
  readonly uploads: Counter<"kind" | "result">;
}

/** The media service's consumer of UserDeleted: a deleted account's uploads and their bytes. */
export const MEDIA_ERASE_DURABLE = "media-account-erase";

export async function createMediaContext(shared: ServiceContext): Promise<MediaContext> {
  const media = loadMediaConfig(shared.env);
  await mkdir(media.dir, { recursive: true, mode: 0o700 });
  const blobs = media.s3 === undefined ? await createLocalBlobStore(media.dir) : await createS3BlobStore(media.s3, media.dir);
  const store = createMediaStore(shared.router);
  const sweeper = createSweeper({
    router: shared.router,
    store,
    blobs,
    log: shared.log,
    metrics: shared.metrics,
    graceMs: media.unattachedGraceMs,
    batch: media.sweepBatch,
    intervalMs: media.sweepIntervalMs,
  });
  const images = createImagePool(media.imageWorkers);
  const uploads = new Counter({
    name: "chirp_media_uploads_total",
    help: "Uploads by kind (image, video, unknown) and result (ok or the error code).",
    labelNames: ["kind", "result"],
    registers: [shared.metrics.registry],
  });
  shared.log.info(
    {
      blob_store: media.s3 === undefined ? `dir ${media.dir}` : `s3 ${media.s3.endpoint}/${media.s3.bucket}/${media.s3.prefix}`,
      max_image_bytes: media.maxImageBytes,
      max_video_bytes: media.maxVideoBytes,
      unattached_grace_ms: media.unattachedGraceMs,
    },
    "media configured",
  );
  let eraser: EventConsumer | undefined;
  if (shared.bus !== undefined) {
    const log = shared.log.child({ component: "account-erase" });
    eraser = consumeUserDeleted({
      bus: shared.bus,
      durable: MEDIA_ERASE_DURABLE,
      erase: async (userId) => {
        const removed = await sweeper.eraseOwner(userId);
        log.info({ user_id: String(userId), media: removed }, "deleted account's media erased");
      },
      concurrency: 2,
      log,
      metrics: shared.metrics,
    });
  }
  return {
    ...shared,
    media,
    store,
    blobs,
    sweeper,
    images,
    uploads,
    close: async () => {
      await eraser?.stop();
      await sweeper.stop();
      await images.close();
    },
  };
}
