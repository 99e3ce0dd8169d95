// Photos and videos end to end: a private cluster, the whole mesh and the
// gateway. Every file is made in this test (services/media/testing/files.ts):
// real JPEG/PNG/GIF/WebP images carrying EXIF/XMP/GPS, minimal MP4 and WebM
// containers, and the broken ones: a corrupt image, truncated videos, an
// executable renamed to .jpg. Uploads go through POST /media as a browser
// sends them, or into the mesh's Upload stream; what was stored is read back
// through GET /media and the shard router.
import { createHash } from "node:crypto";
import { Agent, request as httpRequest } from "node:http";
import { mkdtemp, readdir, rm, stat, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaUploadedSchema } from "../../gen/chirp/media/v1/events_pb.js";
import { MediaService, UploadRequestSchema, type UploadRequest } from "../../gen/chirp/media/v1/media_service_pb.js";
import { decodeImage } from "../../services/media/image/decode.js";
import { createLocalBlobStore } from "../../services/media/blobs/local.js";
import { exifOrientation, parseJpeg } from "../../services/media/formats/jpeg.js";
import { createMediaStore } from "../../services/media/store.js";
import { createSweeper } from "../../services/media/sweep.js";
import * as files from "../../services/media/testing/files.js";
import { generateTokenKeys, createTokenSigner } from "../../lib/auth/token.js";
import type { Mesh } from "../../devcluster/launch.js";
import { createMetrics } from "../../lib/metrics.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import { vouchingInterceptor } from "../../lib/rpc/vouching-interceptor.js";
import { generateMeshSecret } from "../../lib/auth/assertion.js";

/** The mesh secret the system is launched with: direct calls to a service as a user carry an assertion made with it. */
const MESH_SECRET = generateMeshSecret();
import type { ShardRouter } from "../../lib/shard/router.js";
import { startSystem, type TestSystem } from "../support/system.js";

const MiB = 1024 * 1024;
const MAX_VIDEO = 3 * MiB;

let system: TestSystem;
let mesh: Mesh;
let db: ShardRouter;
let mediaDir: string;
let media: Client<typeof MediaService>;
const keys = generateTokenKeys();
const signer = createTokenSigner(keys.privateKey);

beforeAll(async () => {
  mediaDir = await mkdtemp(join(tmpdir(), "chirp-media-e2e-"));
  system = await startSystem({
    meshSecret: MESH_SECRET,
    env: {
      CHIRP_MEDIA_DIR: mediaDir,
      // A small video limit keeps the over-the-limit upload small; images keep the 16 MiB default.
      CHIRP_MEDIA_MAX_VIDEO_BYTES: String(MAX_VIDEO),
      // The sweep is run by this test, in-process, when it wants it.
      CHIRP_MEDIA_SWEEP_INTERVAL_MS: "0",
    },
    tokenKeys: { privateKey: keys.privateKey, publicKeys: [keys.publicKey] },
  });
  ({ mesh, router: db } = system);
  media = createClient(MediaService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${mesh.services.media.grpcPort}`, interceptors: [vouchingInterceptor(MESH_SECRET)] }));
});

afterAll(async () => {
  await system?.stop();
  if (mediaDir) await rm(mediaDir, { recursive: true, force: true });
});

// --- helpers -----------------------------------------------------------------

interface MediaJson {
  id: string;
  ownerId: string;
  contentType: string;
  sizeBytes: string;
  width: number;
  height: number;
  duration?: string;
  kind: string;
  url: string;
  thumbnailUrl: string;
  createTime: string;
}

let serial = 0;
async function signUp(name: string): Promise<{ id: string; token: string }> {
  serial++;
  const handle = `${name}${serial}`.slice(0, 15);
  const res = await fetch(`${mesh.gatewayUrl}/chirp.user.v1.UserService/SignUp`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ handle, displayName: name, email: `${handle}@example.com`, password: "correct horse battery" }),
  });
  const json = (await res.json()) as { user: { id: string }; token: string };
  return { id: json.user.id, token: json.token };
}

async function post(body: Buffer, token: string | undefined, contentType = "application/octet-stream"): Promise<{ status: number; json: MediaJson & { code?: string } }> {
  const res = await fetch(`${mesh.gatewayUrl}/media`, {
    method: "POST",
    headers: { "content-type": contentType, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body,
  });
  return { status: res.status, json: (await res.json()) as MediaJson & { code?: string } };
}

async function upload(body: Buffer, token: string, contentType?: string): Promise<MediaJson> {
  const res = await post(body, token, contentType);
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return res.json;
}

async function get(path: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(`${mesh.gatewayUrl}${path}`, { method, headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const asCaller = (id: string) => ({ headers: { [CALLER_ID_HEADER]: id } });

async function mediaRow(ownerId: string, id: string) {
  const rows = await db
    .primaryForUser(ownerId)
    .query<{ sha256: string; thumb_sha256: string | null; tweet_id: string | null; size_bytes: string; stored_bytes: string }>(
      "SELECT sha256, thumb_sha256, tweet_id, size_bytes, stored_bytes FROM chirp.media WHERE id = ?",
      [id],
    );
  return rows[0];
}

async function lookupRow(id: string) {
  return (await db.primaryForUser(id).query<{ owner_id: string }>("SELECT owner_id FROM chirp.media_lookup WHERE media_id = ?", [id]))[0];
}

async function mediaCount(ownerId: string): Promise<number> {
  const rows = await db.primaryForUser(ownerId).query<{ n: number }>("SELECT COUNT(*) AS n FROM chirp.media WHERE owner_id = ?", [ownerId]);
  return Number(rows[0]?.n ?? 0);
}

const blobPath = (sha: string): string => join(mediaDir, sha.slice(0, 2), sha.slice(2, 4), sha);
const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

/** What must be gone from a served image: the fixtures' metadata, byte for byte. */
function expectNoMetadata(served: Buffer): void {
  expect(served.includes(files.SECRET_MAKE)).toBe(false);
  expect(served.includes(files.SECRET_TEXT)).toBe(false);
  expect(served.includes("GPSLatitude")).toBe(false);
  expect(served.includes("xmpmeta")).toBe(false);
  const lat = Buffer.alloc(8);
  lat.writeUInt32BE(files.GPS_LATITUDE[2]![0]);
  lat.writeUInt32BE(files.GPS_LATITUDE[2]![1], 4);
  expect(served.includes(lat)).toBe(false);
  // The GPS IFD pointer tag (0x8825) in any EXIF block left.
  const exif = served.indexOf("Exif\0\0");
  if (exif >= 0) expect(served.subarray(exif, exif + 64).includes(Buffer.from([0x88, 0x25]))).toBe(false);
}

// --- the tests ----------------------------------------------------------------

describe("POST /media: images", () => {
  it("stores a JPEG with EXIF GPS: sized upright, GPS and camera data gone from what is served, orientation kept, a thumbnail made", async () => {
    const alice = await signUp("alice");
    const jpeg = files.makeJpeg({ width: 64, height: 48, orientation: 6 });
    expect(jpeg.includes(files.SECRET_MAKE)).toBe(true);
    // The header says PNG; the bytes say JPEG, and the bytes win.
    const m = await upload(jpeg, alice.token, "image/png");
    expect(m).toMatchObject({ ownerId: alice.id, contentType: "image/jpeg", kind: "MEDIA_KIND_IMAGE", width: 48, height: 64, sizeBytes: String(jpeg.length) });
    expect(m.url).toBe(`/media/${m.id}`);
    expect(m.thumbnailUrl).toBe(`/media/${m.id}/thumb`);

    const served = await get(m.url);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe("image/jpeg");
    expect(served.headers.get("content-length")).toBe(String(served.body.length));
    expect(served.headers.get("etag")).toBe(`"${sha256(served.body)}"`);
    expect(served.headers.get("cache-control")).toContain("max-age=");
    expect(served.headers.get("accept-ranges")).toBe("bytes");
    expect(served.headers.get("last-modified")).not.toBeNull();
    expectNoMetadata(served.body);
    expect(parseJpeg(served.body)).toEqual({ width: 64, height: 48, orientation: 6 });
    const app1 = served.body.indexOf("Exif\0\0");
    expect(exifOrientation(served.body.subarray(app1, app1 + 40))).toBe(6);
    expect(decodeImage("jpeg", served.body, 1e6)).toMatchObject({ width: 64, height: 48 });

    const thumb = await get(m.thumbnailUrl);
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get("content-type")).toBe("image/jpeg");
    expect(decodeImage("jpeg", thumb.body, 1e6)).toMatchObject({ width: 48, height: 64 });
    expectNoMetadata(thumb.body);

    // Stored content-addressed under the data dir: the served bytes' hash names the file.
    const row = await mediaRow(alice.id, m.id);
    expect(row?.sha256).toBe(sha256(served.body));
    expect(await exists(blobPath(row!.sha256))).toBe(true);
    expect(await exists(blobPath(row!.thumb_sha256!))).toBe(true);
    expect(await lookupRow(m.id)).toEqual({ owner_id: alice.id });
    // Nothing left in the spool.
    expect(await readdir(join(mediaDir, "spool"))).toEqual([]);
  });

  it.each([
    ["PNG", () => files.makePng({ width: 40, height: 30 }), "png", "image/png", 40, 30],
    ["GIF", () => files.makeGif({ width: 32, height: 20 }), "gif", "image/gif", 32, 20],
    ["WebP", () => files.makeWebp({ width: 50, height: 20 }), "webp", "image/webp", 50, 20],
  ] as const)("stores a %s with its metadata stripped and a thumbnail", async (_name, make, format, type, width, height) => {
    const user = await signUp("img");
    const file = make();
    const m = await upload(file, user.token, type);
    expect(m).toMatchObject({ contentType: type, kind: "MEDIA_KIND_IMAGE", width, height });
    const served = await get(m.url);
    expect(served.headers.get("content-type")).toBe(type);
    expectNoMetadata(served.body);
    expect(served.body.length).toBeLessThan(file.length);
    expect(decodeImage(format, served.body, 1e6)).toMatchObject({ width, height });
    const thumb = await get(m.thumbnailUrl);
    expect(decodeImage("jpeg", thumb.body, 1e6)).toMatchObject({ width, height });
  });

  it("stores the same bytes once, whoever uploads them", async () => {
    const a = await signUp("dupa");
    const b = await signUp("dupb");
    const png = files.makePng({ width: 11, height: 13 });
    const m1 = await upload(png, a.token);
    const m2 = await upload(png, b.token);
    expect(m1.id).not.toBe(m2.id);
    expect((await mediaRow(a.id, m1.id))?.sha256).toBe((await mediaRow(b.id, m2.id))?.sha256);
  });

  it("announces each upload with MediaUploaded through the owner's outbox", async () => {
    const user = await signUp("event");
    const m = await upload(files.makeGif(), user.token);
    const rows = await db
      .primaryForUser(user.id)
      .query<{ subject: string; payload: Buffer }>("SELECT subject, payload FROM chirp.outbox WHERE user_id = ? AND subject = ?", [user.id, "chirp.media.v1.media_uploaded"]);
    expect(rows).toHaveLength(1);
    const event = fromBinary(MediaUploadedSchema, rows[0]!.payload);
    expect(event).toMatchObject({ mediaId: BigInt(m.id), ownerId: BigInt(user.id), contentType: "image/gif", sizeBytes: BigInt(m.sizeBytes) });
  });
});

describe("POST /media: videos", () => {
  it.each([
    ["MP4 (moov first)", () => files.makeMp4({ width: 640, height: 360, durationMs: 3500, mediaBytes: 200_000 }), "video/mp4", 640, 360, "3.500s"],
    ["MP4 (moov last)", () => files.makeMp4({ width: 1280, height: 720, durationMs: 61_000, moovFirst: false }), "video/mp4", 1280, 720, "61s"],
    ["WebM", () => files.makeWebm({ width: 320, height: 240, durationMs: 2250, mediaBytes: 100_000 }), "video/webm", 320, 240, "2.250s"],
  ] as const)("stores a %s as uploaded, with its duration and size", async (_name, make, type, width, height, duration) => {
    const user = await signUp("vid");
    const file = make();
    const m = await upload(file, user.token, "application/octet-stream");
    expect(m).toMatchObject({ contentType: type, kind: "MEDIA_KIND_VIDEO", width, height, duration, sizeBytes: String(file.length), thumbnailUrl: "" });
    const served = await get(m.url);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toBe(type);
    expect(sha256(served.body)).toBe(sha256(file));
    expect((await get(`${m.url}/thumb`)).status).toBe(404);
  });
});

describe("POST /media: refusals", () => {
  it.each([
    ["a corrupt JPEG (valid header, garbage after)", () => Buffer.concat([files.makeJpeg().subarray(0, 200), Buffer.alloc(3000, 0x5a)]), "image/jpeg"],
    ["a JPEG cut short", () => files.makeJpeg().subarray(0, 900), "image/jpeg"],
    ["a PNG with a broken checksum", () => { const p = files.makePng(); const at = p.indexOf("IDAT") + 6; p[at] = p[at]! ^ 0xff; return p; }, "image/png"],
    ["a WebP whose image data does not decode", () => { const w = files.makeWebp({ metadata: false }); w.fill(0xff, 21); return w; }, "image/webp"],
    ["a truncated MP4", () => { const v = files.makeMp4({ mediaBytes: 100_000 }); return v.subarray(0, v.length - 30_000); }, "video/mp4"],
    ["an MP4 without its moov (cut before it)", () => { const v = files.makeMp4({ moovFirst: false }); return v.subarray(0, v.length - 400); }, "video/mp4"],
    ["a truncated WebM", () => { const v = files.makeWebm({ mediaBytes: 50_000 }); return v.subarray(0, v.length - 10_000); }, "video/webm"],
    ["an executable renamed to .jpg", () => files.makeElf(), "image/jpeg"],
    ["an HTML page", () => Buffer.from("<!doctype html><script>alert(1)</script>"), "image/gif"],
  ])("refuses %s with InvalidArgument and stores nothing", async (_what, make, type) => {
    const user = await signUp("bad");
    const res = await fetch(`${mesh.gatewayUrl}/media`, {
      method: "POST",
      headers: { "content-type": type, "content-disposition": 'attachment; filename="photo.jpg"', authorization: `Bearer ${user.token}` },
      body: make(),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
    expect(await mediaCount(user.id)).toBe(0);
    expect(await readdir(join(mediaDir, "spool"))).toEqual([]);
  });

  it("wants a valid bearer token", async () => {
    const png = files.makePng();
    expect((await post(png, undefined)).status).toBe(401);
    expect((await post(png, undefined)).json.code).toBe("unauthenticated");
    expect((await post(png, "chirp1.forged.token")).status).toBe(401);
    const stranger = signer.sign("12345", 60).token;
    const ok = await post(png, stranger);
    expect(ok.status).toBe(201);
    expect(ok.json.ownerId).toBe("12345");
  });

  it("refuses a video over its limit", async () => {
    const user = await signUp("bigvid");
    const res = await post(files.makeMp4({ mediaBytes: MAX_VIDEO }), user.token);
    expect(res.status).toBe(413);
    expect(res.json.code).toBe("resource_exhausted");
    expect(await mediaCount(user.id)).toBe(0);
  });

  it("keeps a connection whose refused upload was sent whole: the next request on it is answered", async () => {
    const user = await signUp("reuse");
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const url = new URL(`${mesh.gatewayUrl}/media`);
    const send = (body: Buffer): Promise<{ status: number; reused: boolean; body: string }> =>
      new Promise((resolve, reject) => {
        const req = httpRequest({
          agent,
          host: url.hostname,
          port: url.port,
          path: "/media",
          method: "POST",
          headers: { "content-type": "video/mp4", "content-length": String(body.length), authorization: `Bearer ${user.token}` },
        });
        req.on("response", (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, body: text }));
        });
        req.on("error", reject);
        req.end(body);
      });
    try {
      // Refused on its declared size; the gateway reads and drops the rest, which the client sends whole.
      const refused = await send(files.makeMp4({ mediaBytes: MAX_VIDEO }));
      expect(refused.status).toBe(413);
      // The same connection (the agent has one): answered, not left unread until the linger cuts it.
      const next = await send(files.makeMp4({ mediaBytes: 64 * 1024 }));
      expect([next.status, next.reused]).toEqual([201, true]);
    } finally {
      agent.destroy();
    }
  });

  it("answers a 20 MB image (valid header) over the 16 MB limit while the body is still being sent", async () => {
    const user = await signUp("bigimg");
    const total = 20 * MiB;
    const header = files.makePng({ width: 4000, height: 3000, metadata: false }).subarray(0, 64);
    // A client does not stop writing the moment the answer arrives: this one
    // keeps writing for a while after it. The gateway reads and drops the rest
    // of the body for a moment (LINGER_MS) before it closes the connection, so
    // such a client is not reset before it has read the answer (a reset makes
    // its kernel drop the answer it had not read yet).
    const KEEP_WRITING_MS = 300;
    // Until the answer comes the client sends a quarter of the body and then
    // waits: an answer only after the whole body would never come (the test
    // times out). How far a client that never paused would have got depends
    // on the machine's load, not on the gateway (13.6 MB of 20 in one loaded
    // run), so that is not what is checked.
    const BEFORE_ANSWER = total / 4;
    const result = await new Promise<{ status: number; body: string; sentAtResponse: number; resetWithin: string | undefined }>((resolve, reject) => {
      let sent = 0;
      let sentAtResponse = -1;
      let resetWithin: string | undefined;
      let answer: { status: number; body: string } | undefined;
      let lingered = false;
      const finish = (): void => {
        if (answer === undefined || !lingered) return;
        req.destroy();
        resolve({ ...answer, sentAtResponse, resetWithin });
      };
      const url = new URL(`${mesh.gatewayUrl}/media`);
      const req = httpRequest({
        host: url.hostname,
        port: url.port,
        path: "/media",
        method: "POST",
        headers: { "content-type": "image/png", "content-length": String(total), authorization: `Bearer ${user.token}` },
      });
      req.on("response", (res) => {
        sentAtResponse = sent;
        setTimeout(() => {
          lingered = true;
          finish();
        }, KEEP_WRITING_MS);
        // Writing on after the answer, as such a client does.
        pump();
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => {
          answer = { status: res.statusCode ?? 0, body };
          finish();
        });
      });
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (sentAtResponse < 0) reject(err);
        else if (!lingered) resetWithin ??= err.code ?? err.message;
      });
      const chunk = Buffer.alloc(64 * 1024, 0x42);
      const pump = (): void => {
        while (sent < total && !lingered && !req.destroyed) {
          if (sentAtResponse < 0 && sent >= BEFORE_ANSWER) return;
          const piece = sent === 0 ? Buffer.concat([header, chunk.subarray(header.length)]) : chunk;
          sent += piece.length;
          if (!req.write(piece)) {
            req.once("drain", pump);
            return;
          }
        }
        if (sent >= total) req.end();
      };
      pump();
    });
    expect(result.resetWithin).toBeUndefined();
    expect(result.status).toBe(413);
    expect(JSON.parse(result.body).code).toBe("resource_exhausted");
    // The answer came while the body was still being written: before a quarter of it had been sent.
    expect(result.sentAtResponse).toBeLessThanOrEqual(BEFORE_ANSWER);
    expect(await mediaCount(user.id)).toBe(0);
  });

  it("refuses mid-stream in the mesh: over the limit after a few chunks, and more bytes than declared", async () => {
    const user = await signUp("stream");
    let pulled = 0;
    async function* parts(declared: number, chunks: number): AsyncIterable<UploadRequest> {
      yield create(UploadRequestSchema, { part: { case: "metadata", value: { contentType: "image/png", fileName: "", sizeBytes: BigInt(declared) } } });
      const png = files.makePng({ metadata: false });
      for (let i = 0; i < chunks; i++) {
        pulled++;
        const chunk = Buffer.alloc(MiB, 7);
        if (i === 0) png.copy(chunk);
        yield create(UploadRequestSchema, { part: { case: "chunk", value: chunk } });
      }
    }
    // Refused mid-stream: the client stops being pulled well before the end. How far
    // it gets depends on how much HTTP/2 and the sockets take in before the refusal
    // arrives, which grows when the server is slow to read (a run with a 10-chunk body
    // was pulled to its end), so the body is long: 40 MiB.
    const CHUNKS = 40;
    const tooBig = await media.upload(parts(20 * MiB, CHUNKS), asCaller(user.id)).catch((e: unknown) => e);
    expect(ConnectError.from(tooBig).code).toBe(Code.ResourceExhausted);
    expect(pulled).toBeLessThan(CHUNKS);

    pulled = 0;
    const lying = await media.upload(parts(2 * MiB, CHUNKS), asCaller(user.id)).catch((e: unknown) => e);
    expect(ConnectError.from(lying).code).toBe(Code.InvalidArgument);
    expect(pulled).toBeLessThan(CHUNKS);

    const noCaller = await media.upload(parts(MiB, 1)).catch((e: unknown) => e);
    expect(ConnectError.from(noCaller).code).toBe(Code.Unauthenticated);
    expect(await mediaCount(user.id)).toBe(0);
  });
});

describe("GET /media/<id>: ranges and caching", () => {
  let m: MediaJson;
  let file: Buffer;
  beforeAll(async () => {
    const user = await signUp("ranges");
    file = files.makeWebm({ mediaBytes: 300_000 });
    m = await upload(file, user.token);
  });

  it("serves a first-last range, an open range and a suffix as 206 with Content-Range", async () => {
    const size = file.length;
    const first = await get(m.url, { range: "bytes=0-9" });
    expect(first.status).toBe(206);
    expect(first.headers.get("content-range")).toBe(`bytes 0-9/${size}`);
    expect(first.headers.get("content-length")).toBe("10");
    expect(first.body).toEqual(file.subarray(0, 10));

    const open = await get(m.url, { range: `bytes=${size - 100}-` });
    expect(open.status).toBe(206);
    expect(open.body).toEqual(file.subarray(size - 100));

    const suffix = await get(m.url, { range: "bytes=-5" });
    expect(suffix.headers.get("content-range")).toBe(`bytes ${size - 5}-${size - 1}/${size}`);
    expect(suffix.body).toEqual(file.subarray(size - 5));

    const past = await get(m.url, { range: `bytes=1000-${size + 5000}` });
    expect(past.headers.get("content-range")).toBe(`bytes 1000-${size - 1}/${size}`);
    expect(past.body).toEqual(file.subarray(1000));

    const middle = await get(m.url, { range: "bytes=100000-250000" });
    expect(middle.body).toEqual(file.subarray(100_000, 250_001));
  });

  it("answers a range past the end with 416 and the size", async () => {
    const res = await get(m.url, { range: `bytes=${file.length}-` });
    expect(res.status).toBe(416);
    expect(res.headers.get("content-range")).toBe(`bytes */${file.length}`);
  });

  it("serves the whole file for several ranges or a malformed one", async () => {
    for (const range of ["bytes=0-1,5-6", "bytes=9-3", "items=0-5", "bytes=abc"]) {
      const res = await get(m.url, { range });
      expect(res.status, range).toBe(200);
      expect(res.body.length).toBe(file.length);
    }
  });

  it("answers HEAD with the headers only, If-None-Match with 304, and If-Range by its validator", async () => {
    const head = await get(m.url, {}, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(file.length));
    expect(head.body.length).toBe(0);
    const etag = head.headers.get("etag")!;
    expect(etag).toBe(`"${sha256(file)}"`);

    const headRange = await get(m.url, { range: "bytes=0-99" }, "HEAD");
    expect(headRange.status).toBe(206);
    expect(headRange.headers.get("content-length")).toBe("100");

    const cached = await get(m.url, { "if-none-match": etag });
    expect(cached.status).toBe(304);
    expect(cached.body.length).toBe(0);
    expect((await get(m.url, { "if-none-match": '"other"' })).status).toBe(200);

    const sameValidator = await get(m.url, { range: "bytes=0-3", "if-range": etag });
    expect(sameValidator.status).toBe(206);
    expect(sameValidator.body).toEqual(file.subarray(0, 4));
    const changed = await get(m.url, { range: "bytes=0-3", "if-range": '"stale"' });
    expect(changed.status).toBe(200);
    expect(changed.body.length).toBe(file.length);
  });

  it("answers 404 for unknown or malformed ids and 405 for other methods", async () => {
    expect((await get("/media/999999999")).status).toBe(404);
    expect((await get("/media/999999999/thumb")).status).toBe(404);
    expect((await get("/media/../../etc/passwd")).status).toBe(404);
    expect((await get("/media/%2e%2e%2fetc")).status).toBe(404);
    expect((await get("/media/abc")).status).toBe(404);
    expect((await get(m.url, {}, "DELETE")).status).toBe(405);
    expect((await get("/media", {}, "GET")).status).toBe(405);
  });
});

describe("metadata RPCs", () => {
  it("GetMedia answers through the gateway; AttachMedia, BatchGetMedia, Upload and ReadMedia stay inside the mesh", async () => {
    const user = await signUp("getm");
    const m = await upload(files.makePng(), user.token);
    const res = await fetch(`${mesh.gatewayUrl}/chirp.media.v1.MediaService/GetMedia`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mediaId: m.id }),
    });
    expect(((await res.json()) as { media: MediaJson }).media).toEqual(m);
    const missing = await fetch(`${mesh.gatewayUrl}/chirp.media.v1.MediaService/GetMedia`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mediaId: "42" }),
    });
    expect(((await missing.json()) as { code: string }).code).toBe("not_found");
    for (const method of ["AttachMedia", "BatchGetMedia", "Upload", "ReadMedia"]) {
      const r = await fetch(`${mesh.gatewayUrl}/chirp.media.v1.MediaService/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${user.token}` },
        body: JSON.stringify({}),
      });
      expect(r.status, method).toBe(404);
    }
  });

  it("AttachMedia: the owner only, in request order, idempotent for the same tweet, FailedPrecondition for another, all or nothing", async () => {
    const alice = await signUp("attacha");
    const bob = await signUp("attachb");
    const a1 = await upload(files.makePng({ width: 5, height: 5 }), alice.token);
    const a2 = await upload(files.makeGif({ width: 6, height: 6 }), alice.token);
    const a3 = await upload(files.makeWebp({ width: 7, height: 7 }), alice.token);
    const b1 = await upload(files.makePng({ width: 8, height: 8 }), bob.token);
    const tweet = 1_000_001n;

    const attached = await media.attachMedia({ tweetId: tweet, mediaIds: [BigInt(a2.id), BigInt(a1.id)] }, asCaller(alice.id));
    expect(attached.media.map((x) => String(x.id))).toEqual([a2.id, a1.id]);
    expect((await mediaRow(alice.id, a1.id))?.tweet_id).toBe(String(tweet));
    const again = await media.attachMedia({ tweetId: tweet, mediaIds: [BigInt(a1.id), BigInt(a2.id)] }, asCaller(alice.id));
    expect(again.media.map((x) => String(x.id))).toEqual([a1.id, a2.id]);

    const codeOf = (p: Promise<unknown>) => p.then(() => "ok" as const, (e: unknown) => ConnectError.from(e).code);
    expect(await codeOf(media.attachMedia({ tweetId: 2n, mediaIds: [BigInt(a1.id)] }, asCaller(alice.id)))).toBe(Code.FailedPrecondition);
    expect(await codeOf(media.attachMedia({ tweetId: 3n, mediaIds: [BigInt(b1.id)] }, asCaller(alice.id)))).toBe(Code.PermissionDenied);
    expect(await codeOf(media.attachMedia({ tweetId: 3n, mediaIds: [424242n] }, asCaller(alice.id)))).toBe(Code.NotFound);
    // Someone else's among the caller's own: nothing is attached.
    expect(await codeOf(media.attachMedia({ tweetId: 3n, mediaIds: [BigInt(a3.id), BigInt(b1.id)] }, asCaller(alice.id)))).toBe(Code.PermissionDenied);
    expect((await mediaRow(alice.id, a3.id))?.tweet_id).toBeNull();
    expect(await codeOf(media.attachMedia({ tweetId: 3n, mediaIds: [BigInt(a3.id)] }))).toBe(Code.Unauthenticated);
    expect(await codeOf(media.attachMedia({ tweetId: 3n, mediaIds: [1n, 2n, 3n, 4n, 5n] }, asCaller(alice.id)))).toBe(Code.InvalidArgument);
    expect(await codeOf(media.attachMedia({ tweetId: 3n, mediaIds: [BigInt(a3.id)] }, asCaller(alice.id)))).toBe("ok");
  });

  it("BatchGetMedia: request order, each once, missing ones left out", async () => {
    const a = await signUp("batcha");
    const b = await signUp("batchb");
    const m1 = await upload(files.makePng(), a.token);
    const m2 = await upload(files.makeWebm(), b.token);
    const res = await media.batchGetMedia({ mediaIds: [BigInt(m2.id), 777n, BigInt(m1.id), BigInt(m2.id)] });
    expect(res.media.map((x) => String(x.id))).toEqual([m2.id, m1.id]);
    expect(res.media[0]?.contentType).toBe("video/webm");
    expect((await media.batchGetMedia({ mediaIds: [] })).media).toEqual([]);
  });
});

describe("the sweep of unattached uploads", () => {
  it("removes uploads left off every tweet past the grace period, with their lookups and unshared blobs; keeps attached, recent and shared ones", async () => {
    const user = await signUp("sweep");
    const other = await signUp("sweepo");
    const lonely = await upload(files.makePng({ width: 21, height: 9 }), user.token);
    const kept = await upload(files.makePng({ width: 22, height: 9 }), user.token);
    const recent = await upload(files.makePng({ width: 23, height: 9 }), user.token);
    const sharedBytes = files.makeGif({ width: 24, height: 9 });
    const shared = await upload(sharedBytes, user.token);
    const sharedToo = await upload(sharedBytes, other.token);
    await media.attachMedia({ tweetId: 5_000_001n, mediaIds: [BigInt(kept.id)] }, asCaller(user.id));

    // Two days ago, rows and blobs alike.
    const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    for (const m of [lonely, kept, shared]) {
      await db.primaryForUser(user.id).execute("UPDATE chirp.media SET create_time = create_time - INTERVAL 2 DAY WHERE id = ?", [m.id]);
      const row = await mediaRow(user.id, m.id);
      for (const sha of [row!.sha256, row!.thumb_sha256!]) await utimes(blobPath(sha), old, old);
    }
    const lonelyRow = (await mediaRow(user.id, lonely.id))!;
    const sharedRow = (await mediaRow(user.id, shared.id))!;

    const sweeper = createSweeper({
      router: db,
      store: createMediaStore(db),
      blobs: await createLocalBlobStore(mediaDir),
      log: pino({ level: "silent" }),
      metrics: createMetrics("media-test"),
      graceMs: 24 * 3600 * 1000,
      batch: 100,
      intervalMs: 0,
    });
    expect(await sweeper.sweepOnce()).toBe(2);
    await sweeper.stop();

    expect(await mediaRow(user.id, lonely.id)).toBeUndefined();
    expect(await lookupRow(lonely.id)).toBeUndefined();
    expect(await exists(blobPath(lonelyRow.sha256))).toBe(false);
    expect(await exists(blobPath(lonelyRow.thumb_sha256!))).toBe(false);
    expect((await get(lonely.url)).status).toBe(404);

    // The other user's upload of the same bytes keeps the blob.
    expect(await mediaRow(user.id, shared.id)).toBeUndefined();
    expect(await exists(blobPath(sharedRow.sha256))).toBe(true);
    expect((await get(sharedToo.url)).status).toBe(200);

    expect((await get(kept.url)).status).toBe(200);
    expect((await get(recent.url)).status).toBe(200);
  });
});
