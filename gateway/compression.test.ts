import { gunzipSync, brotliDecompressSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { fastBrotli, fastGzip, SYNC_MAX_BYTES } from "./compression.js";

// A timeline-page-like JSON body: repetitive field names, varied values.
const body = new TextEncoder().encode(
  JSON.stringify({
    tweets: Array.from({ length: 10 }, (_, i) => ({
      id: String(7300000000000000000n + BigInt(i * 7919)),
      text: `tweet ${i} about #topic${i % 3} with @someone${i} https://example.com/${i}`,
      author: { id: String(1000 + i), handle: `user${i}`, displayName: `User ${i}`, followerCount: String(i * 13) },
      likeCount: String(i),
      createdAt: `2026-12-06T12:${String(i).padStart(2, "0")}:00Z`,
    })),
  }),
);

describe("response compression", () => {
  it("gzip output is standard gzip that decompresses to the input, and smaller", async () => {
    const out = await fastGzip.compress(body);
    expect(gunzipSync(out)).toEqual(Buffer.from(body));
    expect(out.byteLength).toBeLessThan(body.byteLength / 2);
    expect(Buffer.from(await fastGzip.decompress(out, 1 << 20))).toEqual(Buffer.from(body));
  });

  it("brotli output is standard brotli that decompresses to the input, and smaller", async () => {
    const out = await fastBrotli.compress(body);
    expect(brotliDecompressSync(out)).toEqual(Buffer.from(body));
    expect(out.byteLength).toBeLessThan(body.byteLength / 2);
  });

  it("compresses a body above the synchronous limit too (in the thread pool), to the same standard formats", async () => {
    const big = new Uint8Array(SYNC_MAX_BYTES * 2 + 7);
    for (let i = 0; i < big.length; i++) big[i] = body[i % body.length]!;
    expect(gunzipSync(await fastGzip.compress(big))).toEqual(Buffer.from(big));
    expect(brotliDecompressSync(await fastBrotli.compress(big))).toEqual(Buffer.from(big));
  });

  it("keeps the names clients ask for", () => {
    expect([fastGzip.name, fastBrotli.name]).toEqual(["gzip", "br"]);
  });
});
