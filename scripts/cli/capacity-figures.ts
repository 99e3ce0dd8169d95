// Where `chirp capacity` gets its per-call costs: the project's own benchmark
// results (bench/results/*.json) wherever a benchmark measured the figure,
// otherwise a stated assumption that says which benchmark is missing. Every
// figure carries its source, and the output prints it next to the figure.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { assumedSearchIndexBytes, type CapacityFigures, type CapacityInputs } from "./capacity-model.js";

export type FigureName = keyof CapacityFigures;

export interface Figure {
  readonly value: number;
  readonly unit: string;
  /** Where the value came from, in words a reader can follow. */
  readonly source: string;
  readonly kind: "measured" | "assumed" | "set";
}

export type FigureSet = { readonly [K in FigureName]: Figure };

interface BenchRead {
  readonly file: string;
  /** The JSON path shown in the output. */
  readonly path: string;
  readonly read: (json: unknown) => number | undefined;
}

interface FigureSpec {
  readonly unit: string;
  readonly bench?: BenchRead;
  /** The value and why, used when no benchmark result has it. */
  readonly assume: (inputs: CapacityInputs) => { readonly value: number; readonly why: string };
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** rpc-overhead.json: a pair's median figure. */
function rpcPair(pair: string, field: string): BenchRead {
  return {
    file: "rpc-overhead.json",
    path: `pairs["${pair}"].median.${field}`,
    read: (json) => num(obj(obj(list(obj(json)?.["pairs"]).find((p) => obj(p)?.["name"] === pair))?.["median"])?.[field]),
  };
}

/** router-overhead.json: a workload's median for the router variant (as services run it). */
function routerRow(workload: string, field: string): BenchRead {
  return {
    file: "router-overhead.json",
    path: `rows[workload="${workload}", variant="router"].median.${field}`,
    read: (json) =>
      num(obj(obj(list(obj(json)?.["rows"]).find((r) => obj(r)?.["workload"] === workload && obj(r)?.["variant"] === "router"))?.["median"])?.[field]),
  };
}

export const FIGURES: { readonly [K in FigureName]: FigureSpec } = {
  rpcServerUs: {
    unit: "µs CPU/call",
    bench: rpcPair("grpc-js -> grpc-js", "serverCpuUsPerCall"),
    assume: () => ({ value: 120, why: "no rpc-overhead result (npm run bench:rpc)" }),
  },
  rpcClientUs: {
    unit: "µs CPU/call",
    bench: rpcPair("grpc-js -> grpc-js", "clientCpuUsPerCall"),
    assume: () => ({ value: 140, why: "no rpc-overhead result (npm run bench:rpc)" }),
  },
  edgeServerUs: {
    unit: "µs CPU/call",
    bench: rpcPair("connect -> connect", "serverCpuUsPerCall"),
    assume: () => ({ value: 300, why: "no rpc-overhead result (npm run bench:rpc)" }),
  },
  dbReadUs: {
    unit: "µs CPU/statement",
    bench: routerRow("point select", "cpuUsPerQuery"),
    assume: () => ({ value: 60, why: "no router-overhead result (npm run bench:router)" }),
  },
  dbWriteUs: {
    unit: "µs CPU/statement",
    bench: routerRow("insert one row", "cpuUsPerQuery"),
    assume: () => ({ value: 120, why: "no router-overhead result (npm run bench:router)" }),
  },
  fanOutDeliveryUs: {
    unit: "µs/delivery",
    bench: {
      file: "timeline.json",
      path: "1e6 / fanOut.deliveriesPerSecond.p50 (one timeline process)",
      read: (json) => {
        const rate = num(obj(obj(obj(json)?.["fanOut"])?.["deliveriesPerSecond"])?.["p50"]);
        return rate === undefined ? undefined : 1e6 / rate;
      },
    },
    assume: () => ({ value: 20, why: "one pipelined ZADD per follower's list (npm run bench:timeline measures it)" }),
  },
  searchIndexBytesPerTweet: {
    unit: "bytes/tweet on disk",
    bench: {
      file: "search.json",
      path: "sum(load.sizesMiB[].tables) / load.docs",
      read: (json) => {
        const load = obj(obj(json)?.["load"]);
        const docs = num(load?.["docs"]);
        const mib = list(load?.["sizesMiB"])
          .flatMap((s) => Object.values(obj(obj(s)?.["tables"]) ?? {}))
          .reduce<number>((a, b) => a + (typeof b === "number" ? b : 0), 0);
        return docs === undefined || mib <= 0 ? undefined : (mib * 2 ** 20) / docs;
      },
    },
    assume: (i) => ({
      value: Math.round(assumedSearchIndexBytes(i.tweetTextBytes) * 1.5),
      why: "no search benchmark result (npm run bench:search); from the schema: docs row + one posting per ~7 bytes of text, x1.5 InnoDB overhead",
    }),
  },
  redisCommandUs: {
    unit: "µs CPU/round trip",
    assume: () => ({ value: 25, why: "no benchmark yet of a service's CPU per Redis round trip (ioredis)" }),
  },
  imageProcessUs: {
    unit: "µs CPU/photo",
    assume: () => ({
      value: 320_000,
      why: "no benchmark yet; services/media/README.md (Limits): about one 12 MP photo every 2 s per worker, scaled by pixels to a ~2 MP photo",
    }),
  },
  mediaServeUsPerMiB: {
    unit: "µs CPU/MiB",
    assume: () => ({ value: 2_000, why: "no benchmark yet of streaming media through the gateway and media service" }),
  },
  primaryWriteTxPerSec: {
    unit: "tx/s per primary",
    assume: () => ({
      value: 2_000,
      why: "no result file; bench/README.md (outbox-relay) saw 1,500-2,600 semi-sync single-row tx/s, 32 in flight, on a shared 2-core machine",
    }),
  },
  memberReadRowsPerSec: {
    unit: "rows/s per member",
    assume: () => ({ value: 20_000, why: "no benchmark yet of MariaDB point-select throughput under concurrency (router-overhead measures one at a time)" }),
  },
  relayEventsPerSec: {
    unit: "events/s per shard",
    assume: () => ({ value: 6_000, why: "no result file; bench/README.md (outbox-relay) measured a 6,000-6,800 events/s backlog drain" }),
  },
  redisEntryBytes: {
    unit: "bytes/entry",
    assume: () => ({
      value: 135,
      why: "measured: MEMORY USAGE of an 800-entry home timeline sorted set, Redis 7.0 (checked by scripts/cli/capacity-redis.test.ts)",
    }),
  },
  redisFollowingMemberBytes: {
    unit: "bytes/member",
    assume: () => ({
      value: 70,
      why: "measured: MEMORY USAGE of a 200-member following set, Redis 7.0 (checked by scripts/cli/capacity-redis.test.ts)",
    }),
  },
  redisNodeOpsPerSec: { unit: "ops/s per node", assume: () => ({ value: 100_000, why: "no benchmark yet; a single-threaded Redis on one core" }) },
  redisNodeBytes: { unit: "bytes per node", assume: () => ({ value: 25 * 2 ** 30, why: "usable memory per Redis node (a 32 GiB machine)" }) },
  innodbOverhead: { unit: "x logical bytes", assume: () => ({ value: 1.5, why: "InnoDB page fill, non-leaf pages and fragmentation, not measured here" }) },
  hydratedTweetBytes: { unit: "bytes/tweet", assume: () => ({ value: 800, why: "Connect JSON of a tweet with its author, not measured here" }) },
  requestOverheadBytes: { unit: "bytes/request", assume: () => ({ value: 400, why: "HTTP headers and framing both ways" }) },
  mediaOpenShare: { unit: "of media shown", assume: () => ({ value: 0.1, why: "share of media in timelines opened in full; a guess" }) },
  tweetCacheMissRatio: {
    unit: "of tweet lookups",
    assume: () => ({ value: 0.1, why: "no benchmark yet of the tweet cache's hit ratio (chirp_tweet_cache_reads_total in production)" }),
  },
};

/** Every figure: from `benchDir` where a result has it, else assumed; then `overrides` (named on the command line). */
export function loadFigures(benchDir: string, inputs: CapacityInputs, overrides: Partial<Record<FigureName, number>> = {}): FigureSet {
  const cache = new Map<string, { json?: unknown; date?: string; missing?: string }>();
  const result = (file: string): { json?: unknown; date?: string; missing?: string } => {
    let r = cache.get(file);
    if (r === undefined) {
      const path = join(benchDir, file);
      if (!existsSync(path)) r = { missing: "not run yet" };
      else {
        try {
          const json: unknown = JSON.parse(readFileSync(path, "utf8"));
          const date = obj(json)?.["date"];
          r = { json, ...(typeof date === "string" ? { date: date.slice(0, 10) } : {}) };
        } catch (err) {
          r = { missing: `unreadable (${(err as Error).message})` };
        }
      }
      cache.set(file, r);
    }
    return r;
  };
  const out = {} as Record<FigureName, Figure>;
  for (const name of Object.keys(FIGURES) as FigureName[]) {
    const spec = FIGURES[name];
    const override = overrides[name];
    if (override !== undefined) {
      out[name] = { value: override, unit: spec.unit, source: "set with --set", kind: "set" };
      continue;
    }
    if (spec.bench !== undefined) {
      const r = result(spec.bench.file);
      const value = r.json === undefined ? undefined : spec.bench.read(r.json);
      if (value !== undefined) {
        out[name] = { value, unit: spec.unit, source: `bench/results/${spec.bench.file}${r.date ? ` (${r.date})` : ""}: ${spec.bench.path}`, kind: "measured" };
        continue;
      }
      const a = spec.assume(inputs);
      const why = r.missing === undefined ? `bench/results/${spec.bench.file} has no ${spec.bench.path}` : `bench/results/${spec.bench.file} ${r.missing}`;
      out[name] = { value: a.value, unit: spec.unit, source: `assumption (${why}): ${a.why}`, kind: "assumed" };
      continue;
    }
    const a = spec.assume(inputs);
    out[name] = { value: a.value, unit: spec.unit, source: a.why.startsWith("measured") ? a.why : `assumption: ${a.why}`, kind: a.why.startsWith("measured") ? "measured" : "assumed" };
  }
  return out;
}

export function figureValues(set: FigureSet): CapacityFigures {
  return Object.fromEntries(Object.entries(set).map(([k, f]) => [k, f.value])) as unknown as CapacityFigures;
}
