// Blobs in an S3-compatible bucket, one object per blob at <prefix><sha256>,
// over fetch with SigV4 (sigv4.ts), path-style URLs (<endpoint>/<bucket>/<key>)
// so any S3-compatible server works. Uploads are spooled to a local folder
// first (the size limits and format checks need the whole file before it is
// stored), then PUT with their SHA-256 as the signed payload hash, so the
// server checks the bytes it received.
//
// Not exercised against a real S3 in this repository's tests: the signing is
// checked against AWS's published vectors (sigv4.test.ts).
import { createReadStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import type { S3Config } from "../config.js";
import { checkBlobName, type BlobInfo, type BlobSource, type BlobStore } from "./blob-store.js";
import { EMPTY_SHA256, signRequest, uriEncode } from "./sigv4.js";

export async function createS3BlobStore(config: S3Config, spoolRoot: string): Promise<BlobStore> {
  const spoolDir = join(resolve(spoolRoot), "spool");
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  const key = { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey, region: config.region, service: "s3" };

  const urlOf = (sha256: string): URL =>
    new URL(`${config.endpoint}/${uriEncode(config.bucket)}/${uriEncode(`${config.prefix}${checkBlobName(sha256)}`, true)}`);

  const send = async (
    method: string,
    sha256: string,
    options: { headers?: Record<string, string>; payloadHash?: string; body?: Buffer | ReadableStream<Uint8Array>; signal?: AbortSignal } = {},
  ): Promise<Response> => {
    const url = urlOf(sha256);
    const payloadHash = options.payloadHash ?? EMPTY_SHA256;
    const signed = signRequest(
      { method, url, headers: { ...options.headers, "x-amz-content-sha256": payloadHash }, payloadHash, date: new Date() },
      key,
    );
    const { host: _host, ...headers } = signed.headers;
    try {
      return await fetch(url, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: options.body, duplex: "half" }),
        ...(options.signal ? { signal: options.signal } : {}),
      } as RequestInit);
    } catch (err) {
      throw new ConnectError("blob store unavailable", Code.Unavailable, undefined, undefined, err);
    }
  };

  const failed = async (res: Response, what: string): Promise<never> => {
    const text = await res.text().catch(() => "");
    const code = res.status >= 500 || res.status === 429 ? Code.Unavailable : Code.Internal;
    throw new ConnectError("blob store error", code, undefined, undefined, new Error(`s3 ${what}: HTTP ${res.status} ${text.slice(0, 200)}`));
  };

  return {
    spoolDir,

    async put(sha256, source: BlobSource, size) {
      // Always PUT, even when the object exists: it refreshes Last-Modified,
      // which keeps the sweep from deleting a blob a new upload now names.
      const body = "bytes" in source ? source.bytes : (Readable.toWeb(createReadStream(source.path)) as ReadableStream<Uint8Array>);
      const res = await send("PUT", sha256, { headers: { "content-length": String(size) }, payloadHash: sha256, body });
      if (!res.ok) await failed(res, "put");
      await res.arrayBuffer();
    },

    async stat(sha256): Promise<BlobInfo | undefined> {
      const res = await send("HEAD", sha256);
      if (res.status === 404) return undefined;
      if (!res.ok) await failed(res, "head");
      return { size: Number(res.headers.get("content-length") ?? 0), modifiedMs: Date.parse(res.headers.get("last-modified") ?? "") || 0 };
    },

    async *read(sha256, start, end, signal) {
      if (end <= start) return;
      const res = await send("GET", sha256, { headers: { range: `bytes=${start}-${end - 1}` }, ...(signal ? { signal } : {}) });
      if (!res.ok || res.body === null) await failed(res, "get");
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) yield chunk;
    },

    async delete(sha256) {
      const res = await send("DELETE", sha256);
      if (!res.ok && res.status !== 404) await failed(res, "delete");
      await res.arrayBuffer();
    },
  };
}
