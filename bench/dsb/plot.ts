/**
 * Latency against throughput from a bench result: every open-loop run of
 * bench/results/dsb.json (Chirp and the floor, p50 and p99 of all requests,
 * and p99 of home-timeline reads), as an SVG with a log latency axis. No
 * dependencies: the SVG is written by hand.
 *
 *   npx tsx bench/dsb/plot.ts [--in bench/results/dsb.json] [--out docs/performance-latency.svg]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { exitWithUsageIfAsked } from "../usage.js";

interface Run {
  all: { perSecond: number; latency: { p50Ms: number; p99Ms: number } };
  label: string;
  target: string;
  mode: string;
  rate?: number;
  achievedPerSecond: number;
  byType: Record<string, { latency: { p50Ms: number; p99Ms: number } }>;
}

exitWithUsageIfAsked(`
Draws latency against throughput (every open-loop run, Chirp and the floor) from a bench result as an SVG.

  npm run bench:plot [-- --in bench/results/dsb.json --out docs/performance-latency.svg]
`);

const { values: args } = parseArgs({
  options: {
    in: { type: "string", default: fileURLToPath(new URL("../results/dsb.json", import.meta.url)) },
    out: { type: "string", default: fileURLToPath(new URL("../../docs/performance-latency.svg", import.meta.url)) },
  },
});

const result = JSON.parse(readFileSync(args.in, "utf8")) as { date: string; runs: Run[]; machine: { cores: number; cpuModel: string } };
const open = result.runs.filter((r) => r.mode === "open").sort((a, b) => (a.rate ?? 0) - (b.rate ?? 0));

interface Series {
  name: string;
  color: string;
  dash?: string;
  points: Array<[number, number]>;
}
const pick = (target: string, y: (r: Run) => number): Array<[number, number]> => open.filter((r) => r.target === target).map((r) => [r.all.perSecond, y(r)]);
const series: Series[] = [
  { name: "Chirp p99", color: "#c0392b", points: pick("chirp", (r) => r.all.latency.p99Ms) },
  { name: "Chirp p50", color: "#c0392b", dash: "6 4", points: pick("chirp", (r) => r.all.latency.p50Ms) },
  { name: "Chirp home p99", color: "#e67e22", points: pick("chirp", (r) => r.byType.home?.latency.p99Ms ?? NaN) },
  { name: "floor p99", color: "#2471a3", points: pick("floor", (r) => r.all.latency.p99Ms) },
  { name: "floor p50", color: "#2471a3", dash: "6 4", points: pick("floor", (r) => r.all.latency.p50Ms) },
].filter((s) => s.points.length > 0);

const W = 720;
const H = 420;
const M = { left: 64, right: 170, top: 40, bottom: 48 };
const xs = series.flatMap((s) => s.points.map((p) => p[0]));
const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((y) => y > 0 && Number.isFinite(y));
const xMax = niceCeil(Math.max(...xs) * 1.05);
const yLo = 10 ** Math.floor(Math.log10(Math.min(...ys)));
const yHi = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
const px = (x: number): number => M.left + (x / xMax) * (W - M.left - M.right);
const py = (y: number): number => H - M.bottom - ((Math.log10(y) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * (H - M.top - M.bottom);

function niceCeil(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

const parts: string[] = [];
parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
parts.push(`<text x="${M.left}" y="22" font-size="14" font-weight="bold">Latency against throughput, open loop (DeathStarBench mix, Reed98)</text>`);
for (let i = 0; i <= 5; i++) {
  const x = (xMax / 5) * i;
  parts.push(`<line x1="${px(x)}" y1="${M.top}" x2="${px(x)}" y2="${H - M.bottom}" stroke="#eee"/>`);
  parts.push(`<text x="${px(x)}" y="${H - M.bottom + 16}" text-anchor="middle">${Math.round(x)}</text>`);
}
for (let y = yLo; y <= yHi * 1.001; y *= 10) {
  for (const m of [1, 2, 5]) {
    const v = y * m;
    if (v > yHi * 1.001) break;
    parts.push(`<line x1="${M.left}" y1="${py(v)}" x2="${W - M.right}" y2="${py(v)}" stroke="${m === 1 ? "#ddd" : "#f3f3f3"}"/>`);
    if (m === 1 || m === 5) parts.push(`<text x="${M.left - 6}" y="${py(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toPrecision(1)}</text>`);
  }
}
parts.push(`<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" stroke="black"/>`);
parts.push(`<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" stroke="black"/>`);
parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">successful requests per second (each point: one open-loop run at a fixed arrival rate)</text>`);
parts.push(`<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">latency, ms (log scale, from the intended send time)</text>`);
for (const [i, s] of series.entries()) {
  const d = s.points.map((p, j) => `${j === 0 ? "M" : "L"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" ");
  parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
  for (const p of s.points) parts.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${s.color}"/>`);
  const ly = M.top + 10 + i * 20;
  parts.push(`<line x1="${W - M.right + 12}" y1="${ly}" x2="${W - M.right + 40}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
  parts.push(`<text x="${W - M.right + 46}" y="${ly + 4}">${s.name}</text>`);
}
parts.push(`<text x="${W - M.right + 12}" y="${H - M.bottom - 24}" fill="#555">${result.date.slice(0, 10)}</text>`);
parts.push(`<text x="${W - M.right + 12}" y="${H - M.bottom - 8}" fill="#555">${result.machine.cores} cores, shared</text>`);
parts.push("</svg>");
writeFileSync(args.out, `${parts.join("\n")}\n`);
process.stderr.write(`wrote ${args.out} (${open.length} open-loop runs)\n`);
