// chirp capacity: back-of-the-envelope sizing from the project's own
// benchmarks. The arithmetic is capacity-model.ts; the per-call costs and
// where each comes from, capacity-figures.ts.
import { fileURLToPath } from "node:url";
import { EXIT_OK, EXIT_USAGE, UsageError, takeOption } from "./args.js";
import { FIGURES, figureValues, loadFigures, type Figure, type FigureName, type FigureSet } from "./capacity-figures.js";
import { CapacityInputError, estimateCapacity, type CapacityInputs, type CapacityReport, type Rates } from "./capacity-model.js";

export const usage = "chirp capacity [--dau N] [--tweets-per-user N] [--reads-per-user N] [--follows-per-user N] [--media-share F] ... [--json]";

export const DEFAULT_BENCH_DIR = fileURLToPath(new URL("../../bench/results/", import.meta.url));

/** Flag, the input it sets, its default (as typed), how it parses, and what it means. */
const FLAGS = [
  ["dau", "dailyActiveUsers", "1M", "count", "daily active users"],
  ["users", "registeredUsers", "2 x dau", "count", "registered accounts (edges and user rows scale with these)"],
  ["tweets-per-user", "tweetsPerUser", "2", "number", "tweets posted per active user per day"],
  ["reads-per-user", "readsPerUser", "20", "number", "home timeline pages read per active user per day"],
  ["likes-per-user", "likesPerUser", "5", "number", "likes per active user per day"],
  ["searches-per-user", "searchesPerUser", "1", "number", "searches per active user per day"],
  ["follows-per-user", "followsPerUser", "200", "number", "accounts each user follows (= average followers)"],
  ["media-share", "mediaShare", "0.1", "fraction", "share of tweets with a photo or video"],
  ["video-share", "videoShare", "0.2", "fraction", "share of those media that are videos"],
  ["photo-size", "photoBytes", "300kB", "bytes", "average stored photo"],
  ["video-size", "videoBytes", "5MB", "bytes", "average stored video"],
  ["thumb-size", "thumbBytes", "20kB", "bytes", "average thumbnail"],
  ["tweet-bytes", "tweetTextBytes", "100", "bytes", "average tweet text, UTF-8"],
  ["page-size", "pageSize", "20", "count", "tweets per timeline or search page"],
  ["peak-factor", "peakFactor", "3", "number", "busiest hour over the daily average"],
  ["retention-years", "retentionYears", "5", "number", "years of tweets, likes and media kept"],
  ["replication", "replicationFactor", "2", "count", "copies of each MySQL row (primary + replicas)"],
  ["timeline-entries", "timelineEntries", "800", "count", "entries per home timeline in Redis"],
  ["utilization", "targetUtilization", "0.6", "fraction", "share of a core an instance may use at peak"],
  ["shard-max", "shardMaxBytes", "500GB", "bytes", "most data one shard's primary should hold"],
] as const satisfies ReadonlyArray<readonly [string, keyof CapacityInputs, string, "count" | "number" | "fraction" | "bytes", string]>;

export const help = [
  `usage: ${usage}`,
  "",
  "Turns usage estimates into traffic (average and peak), storage per year, bandwidth, Redis",
  "memory, and the shards and service instances needed. Per-call costs come from the",
  "project's benchmark results (bench/results/*.json); a figure no benchmark has measured yet",
  "is a labelled assumption, and the output names the source of every figure.",
  "",
  "inputs (default in brackets; counts take k, M, B; sizes take kB, MB, GB, KiB, MiB, GiB):",
  ...FLAGS.map(([flag, , def, , text]) => `  --${flag.padEnd(18)} ${text} [${def}]`),
  "",
  "other options:",
  `  --${"set NAME=VALUE".padEnd(18)} replace a figure (repeatable), e.g. --set dbWriteUs=150; names:`,
  ...wrap(Object.keys(FIGURES).join(", "), 66).map((l) => `  ${"".padEnd(20)} ${l}`),
  `  --${"bench-dir DIR".padEnd(18)} read benchmark results from DIR [bench/results]`,
  `  --${"json".padEnd(18)} print inputs, figures (with sources) and results as JSON`,
  `  --${"help".padEnd(18)} this text`,
].join("\n");

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

const COUNT_SUFFIX: Record<string, number> = { "": 1, k: 1e3, K: 1e3, M: 1e6, B: 1e9 };
const BYTE_SUFFIX: Record<string, number> = { "": 1, B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };

/** "1M", "2.5k", "1e6", "1_000_000". */
export function parseCount(text: string): number {
  const m = /^([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([kKMB]?)$/.exec(text.trim());
  if (m === null) throw new UsageError(`not a number: ${JSON.stringify(text)}`);
  return Number(m[1]!.replaceAll("_", "")) * COUNT_SUFFIX[m[2]!]!;
}

/** "300kB", "5MB", "1.5GiB", "1000". */
export function parseBytes(text: string): number {
  const m = /^([0-9][0-9_]*(?:\.[0-9]+)?)\s*([A-Za-z]*)$/.exec(text.trim());
  const factor = m === null ? undefined : BYTE_SUFFIX[m[2]!];
  if (m === null || factor === undefined) throw new UsageError(`not a size: ${JSON.stringify(text)} (use e.g. 300kB, 5MB, 2GiB)`);
  return Number(m[1]!.replaceAll("_", "")) * factor;
}

export interface ParsedArgs {
  readonly inputs: CapacityInputs;
  readonly overrides: Partial<Record<FigureName, number>>;
  readonly benchDir: string;
  readonly json: boolean;
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const args = [...argv];
  const json = takeFlag(args, "json");
  const overrides: Partial<Record<FigureName, number>> = {};
  for (const setting of takeRepeated(args, "set")) {
    const eq = setting.indexOf("=");
    const name = setting.slice(0, eq) as FigureName;
    if (eq < 1 || !Object.hasOwn(FIGURES, name)) throw new UsageError(`--set wants NAME=VALUE with NAME one of ${Object.keys(FIGURES).join(", ")}`);
    const value = Number(setting.slice(eq + 1));
    if (!(Number.isFinite(value) && value > 0)) throw new UsageError(`--set ${name}: want a positive number`);
    overrides[name] = value;
  }
  const benchDir = takeOption(args, "bench-dir", DEFAULT_BENCH_DIR);
  const inputs: Record<string, number> = {};
  for (const [flag, key, def, kind] of FLAGS) {
    const raw = takeOption(args, flag, key === "registeredUsers" ? "" : def);
    if (raw === "") continue;
    const value = kind === "bytes" ? parseBytes(raw) : kind === "count" ? parseCount(raw) : Number(raw);
    if (!Number.isFinite(value)) throw new UsageError(`--${flag}: not a number: ${JSON.stringify(raw)}`);
    inputs[key] = value;
  }
  inputs["registeredUsers"] ??= 2 * inputs["dailyActiveUsers"]!;
  const unknown = args.find((a) => a.startsWith("-"));
  if (unknown !== undefined) throw new UsageError(`unknown option ${unknown}`);
  if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
  return { inputs: inputs as unknown as CapacityInputs, overrides, benchDir, json };
}

function takeFlag(args: string[], name: string): boolean {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return false;
  args.splice(at, 1);
  return true;
}

function takeRepeated(args: string[], name: string): string[] {
  const values: string[] = [];
  for (;;) {
    const before = args.length;
    const value = takeFirst(args, name);
    if (value === undefined || args.length === before) return values;
    values.push(value);
  }
}

/** Like takeOption, for the first occurrence only (so a repeated option can be collected). */
function takeFirst(args: string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const arg = args[i]!;
  if (arg !== `--${name}`) {
    args.splice(i, 1);
    return arg.slice(name.length + 3);
  }
  const next = args[i + 1];
  if (next === undefined || next.startsWith("--")) throw new UsageError(`--${name} needs a value`);
  args.splice(i, 2);
  return next;
}

export async function run(argv: string[]): Promise<number> {
  let parsed: ParsedArgs;
  let report: CapacityReport;
  let figures: FigureSet;
  try {
    parsed = parseArgs(argv);
    figures = loadFigures(parsed.benchDir, parsed.inputs, parsed.overrides);
    report = estimateCapacity(parsed.inputs, figureValues(figures));
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof CapacityInputError)) throw err;
    process.stderr.write(`chirp capacity: ${err.message} (usage: ${usage}; --help for every option)\n`);
    return EXIT_USAGE;
  }
  process.stdout.write(parsed.json ? `${JSON.stringify({ inputs: parsed.inputs, figures, report }, null, 2)}\n` : formatReport(parsed.inputs, figures, report));
  return EXIT_OK;
}

// --- text output ------------------------------------------------------------------

/** 1234 -> "1,234"; 12.34 -> "12.3"; 0.1234 -> "0.12". */
export function fmtNumber(n: number): string {
  if (n >= 100) return Math.round(n).toLocaleString("en-US");
  if (n >= 10) return n.toFixed(1);
  if (n === 0) return "0";
  return n.toFixed(2);
}

/** Decimal units, as disks and links are sold. */
export function fmtBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return `${n >= 100 || u === 0 ? Math.round(n) : n.toFixed(1)} ${units[u]}`;
}

export function fmtBits(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gbit/s`;
  return `${(bits / 1e6).toFixed(1)} Mbit/s`;
}

/** Columns aligned by `align`, one letter per column: l(eft) or r(ight). */
function table(align: string, rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => `  ${r.map((cell, c) => (align[c] === "r" ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("   ")}`.trimEnd());
}

function fmtFigure(f: Figure): string {
  // Memory sizes read better in units than in digits.
  if (f.unit.startsWith("bytes ") && f.value >= 1e5) return `${fmtBytes(f.value)} ${f.unit.slice("bytes ".length)}`;
  return `${fmtNumber(f.value)} ${f.unit}`;
}

const RATE_ROWS: readonly [keyof Rates, string][] = [
  ["tweets", "tweets posted"],
  ["timelineReads", "home timeline pages"],
  ["likes", "likes"],
  ["searches", "searches"],
  ["mediaUploads", "media uploads"],
  ["fanOutDeliveries", "fan-out deliveries (home lists written)"],
  ["hydratedTweets", "tweets hydrated (pages x page size)"],
  ["thumbnails", "thumbnails served"],
  ["mediaViews", "media opened in full"],
  ["apiRequests", "requests at the gateway"],
  ["events", "events through the outbox"],
];

export function formatReport(i: CapacityInputs, figures: FigureSet, r: CapacityReport): string {
  const out: string[] = [];
  const s = r.storage;
  out.push(
    `chirp capacity: ${fmtNumber(i.dailyActiveUsers)} daily active users of ${fmtNumber(i.registeredUsers)}; ` +
      `per user a day: tweets ${i.tweetsPerUser}, timeline pages ${i.readsPerUser}, likes ${i.likesPerUser}, searches ${i.searchesPerUser}; ` +
      `following ${i.followsPerUser}; media on ${+(i.mediaShare * 100).toFixed(2)}% of tweets`,
    "",
    `Traffic (per second; peak = ${i.peakFactor} x average)`,
    ...table("lrr", [["", "average", "peak"], ...RATE_ROWS.map(([k, label]) => [label, fmtNumber(r.average[k]), fmtNumber(r.peak[k])])]),
    "",
    "Storage (on disk; MySQL rows with InnoDB overhead; blobs as stored)",
    ...table("lrr", [
      ["new per year", "one copy", `x${i.replicationFactor} replication`],
      ["tweets", fmtBytes(s.perYear.tweets), fmtBytes(s.perYear.tweets * i.replicationFactor)],
      ["indexes (by author, lookup, search)", fmtBytes(s.perYear.indexes), fmtBytes(s.perYear.indexes * i.replicationFactor)],
      ["likes", fmtBytes(s.perYear.likes), fmtBytes(s.perYear.likes * i.replicationFactor)],
      ["media rows", fmtBytes(s.perYear.mediaRows), fmtBytes(s.perYear.mediaRows * i.replicationFactor)],
      ["MySQL per year", fmtBytes(s.mysqlPerYearBytes / i.replicationFactor), fmtBytes(s.mysqlPerYearBytes)],
      ["media blobs (object store)", fmtBytes(s.perYear.mediaBlobs), ""],
      ["at this size, not per year", "", ""],
      ["follow edges (both directions)", fmtBytes(s.edges), fmtBytes(s.edges * i.replicationFactor)],
      ["users", fmtBytes(s.users), fmtBytes(s.users * i.replicationFactor)],
      [`after ${i.retentionYears} years`, "", ""],
      ["MySQL", fmtBytes(s.mysqlPerCopyBytes), fmtBytes(s.mysqlTotalBytes)],
      ["media blobs", fmtBytes(s.mediaBytes), ""],
    ]),
    "  (media blobs: one copy; the object store's own redundancy comes on top)",
    "",
    "Bandwidth at the gateway",
    ...table("lrrr", [
      ["", "average", "peak", "per day"],
      ["in (posts, uploads, requests)", fmtBits(r.bandwidth.ingressAvg), fmtBits(r.bandwidth.ingressPeak), fmtBytes(r.bandwidth.ingressAvg * 86_400)],
      ["out (pages, thumbnails, media)", fmtBits(r.bandwidth.egressAvg), fmtBits(r.bandwidth.egressPeak), fmtBytes(r.bandwidth.egressAvg * 86_400)],
    ]),
    "  (media served from the gateway; a CDN in front of /media would take most of the outgoing bytes)",
    "",
    "Redis",
    `  home timelines   ${fmtBytes(r.redis.timelineBytes)}  (${fmtNumber(i.dailyActiveUsers)} active users x (${i.timelineEntries} entries x ${fmtNumber(figures.redisEntryBytes.value)} B + ${i.followsPerUser} followed x ${fmtNumber(figures.redisFollowingMemberBytes.value)} B))`,
    `  tweet cache      ${fmtBytes(r.redis.tweetCacheBytes)}  (a day of tweets: the cache's TTL)`,
    `  total            ${fmtBytes(r.redis.totalBytes)} with fragmentation; ${fmtNumber(r.redis.peakOpsPerSec)} ops/s at peak`,
    `  nodes            ${r.redis.nodes}  (by memory and by ops/s; each with a replica for failover)`,
    "",
    "MySQL shards",
    ...table("lrl", [
      ["by storage", String(r.shards.byStorage), `${fmtBytes(s.mysqlPerCopyBytes)} after ${i.retentionYears} years / ${fmtBytes(i.shardMaxBytes)} per shard`],
      ["by writes", String(r.shards.byWrites), `${fmtNumber(r.shards.peakWriteTxPerSec)} tx/s at peak / ${fmtNumber(figures.primaryWriteTxPerSec.value)} per primary`],
      ["by reads", String(r.shards.byReads), `${fmtNumber(r.shards.peakReadRowsPerSec)} rows/s at peak / (${fmtNumber(figures.memberReadRowsPerSec.value)} per member x ${i.replicationFactor})`],
      ["by outbox relay", String(r.shards.byRelay), `${fmtNumber(r.peak.events)} events/s at peak / ${fmtNumber(figures.relayEventsPerSec.value)} per shard's relay`],
    ]),
    `  => ${r.shards.shards} shards (the largest, rounded up to a power of two: keyranges split in halves), ${r.shards.mysqlServers} MariaDB servers`,
    "",
    `Service instances (one core each, at most ${Math.round(i.targetUtilization * 100)}% busy at peak, at least 2)`,
    ...table("lrrlrr", [
      ["service", "cores at peak", "instances", "main call", "at peak/s", "per instance/s"],
      ...r.services.map((l) => [l.service, l.cores.toFixed(2), String(l.instances), l.mainCall, fmtNumber(l.mainRate), fmtNumber(l.perInstance)]),
    ]),
    `  media image workers: ${r.imageWorkerCores.toFixed(2)} cores at peak (CHIRP_MEDIA_IMAGE_WORKERS across the media instances)`,
    "  topology manager: 1 (one per deployment)",
    "",
    "Figures (per-call costs and capacities)",
    ...table("lll", (Object.keys(figures) as FigureName[]).map((name) => [name, fmtFigure(figures[name]), figures[name].source])),
  );
  const assumed = (Object.keys(figures) as FigureName[]).filter((n) => figures[n].kind === "assumed");
  if (assumed.length > 0) out.push("", `No benchmark measures these yet; they are assumptions: ${assumed.join(", ")}.`, "Replace any with --set NAME=VALUE.");
  return `${out.join("\n")}\n`;
}
