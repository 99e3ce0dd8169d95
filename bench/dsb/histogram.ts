/**
 * A small log-linear latency histogram in the manner of HdrHistogram: values
 * (microseconds) are counted in buckets whose width is a fixed fraction of
 * their magnitude, so every percentile read back is within 1/128 (0.8 %)
 * of the true value, exact below 256 µs, up to about 35 minutes, in 50 KiB. Recording is one Math.log2-free integer computation and an
 * increment; histograms merge by adding counts.
 */

/** Linear up to 2^SUB_BITS µs; above, half as many buckets per power of two: relative error <= 1/128. */
const SUB_BITS = 8;
const SUB_BUCKETS = 1 << SUB_BITS;
/** Powers of two covered above the linear range: up to 2^(SUB_BITS + MAGNITUDES) µs. */
const MAGNITUDES = 24;
const SIZE = SUB_BUCKETS * (MAGNITUDES + 1);

export interface HistogramSummary {
  readonly count: number;
  readonly minMs: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
}

export class Histogram {
  private readonly counts = new Float64Array(SIZE);
  private total = 0;
  private sum = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = 0;

  /** Records one value in microseconds (clamped to the covered range). */
  recordMicros(us: number): void {
    const v = Math.max(0, Math.round(us));
    this.counts[indexOf(v)]! += 1;
    this.total++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  recordMs(ms: number): void {
    this.recordMicros(ms * 1000);
  }

  get count(): number {
    return this.total;
  }

  add(other: Histogram): void {
    for (let i = 0; i < SIZE; i++) this.counts[i]! += other.counts[i]!;
    this.total += other.total;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = 0;
  }

  /** The value at percentile p (0-100) in microseconds: the upper edge of its bucket, never above the maximum seen. */
  percentileMicros(p: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperEdge(i), this.max);
    }
    return this.max;
  }

  summary(): HistogramSummary {
    const ms = (us: number): number => Math.round(us) / 1000;
    return {
      count: this.total,
      minMs: this.total === 0 ? NaN : ms(this.min),
      meanMs: this.total === 0 ? NaN : ms(this.sum / this.total),
      p50Ms: ms(this.percentileMicros(50)),
      p90Ms: ms(this.percentileMicros(90)),
      p99Ms: ms(this.percentileMicros(99)),
      p999Ms: ms(this.percentileMicros(99.9)),
      maxMs: this.total === 0 ? NaN : ms(this.max),
    };
  }

  /** Non-empty buckets as [index, count] pairs: enough to rebuild it (results JSON). */
  toJSON(): { buckets: Array<[number, number]>; subBucketBits: number } {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < SIZE; i++) if (this.counts[i]! > 0) buckets.push([i, this.counts[i]!]);
    return { buckets, subBucketBits: SUB_BITS };
  }
}

/** Values below SUB_BUCKETS are exact; above, each power of two is split into SUB_BUCKETS/2 .. SUB_BUCKETS steps. */
function indexOf(v: number): number {
  if (v < SUB_BUCKETS) return v;
  // Position of the highest set bit above the linear range.
  const magnitude = Math.min(MAGNITUDES, 31 - Math.clz32(Math.min(v, 2 ** 31 - 1)) - SUB_BITS + 1);
  const shift = magnitude;
  const sub = Math.min(SUB_BUCKETS - 1, Math.floor(v / 2 ** shift));
  return magnitude * SUB_BUCKETS + sub;
}

function upperEdge(i: number): number {
  const magnitude = Math.floor(i / SUB_BUCKETS);
  const sub = i % SUB_BUCKETS;
  if (magnitude === 0) return sub;
  return (sub + 1) * 2 ** magnitude - 1;
}
