// Seeded random numbers for the benchmarks and `chirp seed`: a run made from
// the same seed makes the same data and the same requests, in any process.

/** Mulberry32: a small, fast, seeded PRNG giving floats in [0, 1). */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
