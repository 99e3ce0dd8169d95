// deploy/: the Prometheus config and alert rules are valid for promtool (and
// their unit tests pass), and every metric the alerts and the Grafana
// dashboard query is one the code registers.
import { execFile, execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { createMetrics } from "../../lib/metrics.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DEPLOY = join(ROOT, "deploy");

function hasPromtool(): boolean {
  try {
    execFileSync("promtool", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const promtool = hasPromtool();
if (!promtool) console.warn("deploy.test.ts: promtool not found, skipping its checks (apt-get install prometheus; .ci/run installs it)");

describe.skipIf(!promtool)("promtool (Debian's prometheus package)", () => {
  it("accepts the alert rules", async () => {
    const { stdout } = await run("promtool", ["check", "rules", join(DEPLOY, "prometheus/alerts.yml")]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("accepts the Prometheus config (and the rule files it names)", async () => {
    const { stdout } = await run("promtool", ["check", "config", join(DEPLOY, "prometheus/prometheus.yml")]);
    expect(stdout).toContain("is valid prometheus config file syntax");
  });

  it("fires the alerts its unit tests expect (deploy/prometheus/alerts.test.yml)", async () => {
    const { stdout } = await run("promtool", ["test", "rules", join(DEPLOY, "prometheus/alerts.test.yml")]);
    expect(stdout).toContain("SUCCESS");
  });
});

/** Every .ts file under dir, tests excluded. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts"))
    .map((e) => join(e.parentPath, e.name));
}

/** Series names the code can expose: each prom-client metric it constructs, and the default process metrics. */
async function registeredSeries(): Promise<Set<string>> {
  const names = new Map<string, string>(); // name -> type
  for (const file of ["lib", "services", "gateway"].flatMap((dir) => sources(join(ROOT, dir)))) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/new (Counter|Gauge|Histogram|Summary)\(\{\s*name:\s*"(chirp_[a-z0-9_]+)"/g)) names.set(m[2]!, m[1]!.toLowerCase());
  }
  const defaults = await createMetrics("deploy-test").registry.getMetricsAsJSON();
  for (const m of defaults) names.set(m.name, String(m.type));
  const series = new Set<string>();
  for (const [name, type] of names) {
    series.add(name);
    if (type === "histogram") for (const suffix of ["_bucket", "_count", "_sum"]) series.add(name + suffix);
    if (type === "summary") for (const suffix of ["_count", "_sum"]) series.add(name + suffix);
  }
  return series;
}

const metricNames = (expr: string): string[] => [...new Set([...expr.matchAll(/\bchirp_[a-z0-9_]+\b/g)].map((m) => m[0]))];

/** The `expr:` values of a rules file: one line, or a `|` block. */
function ruleExprs(yaml: string): string[] {
  const lines = yaml.split("\n");
  const exprs: string[] = [];
  lines.forEach((line, i) => {
    const m = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (m === null) return;
    if (m[2] !== "|") return void exprs.push(m[2]!);
    const block: string[] = [];
    for (let j = i + 1; j < lines.length && (lines[j]!.trim() === "" || lines[j]!.search(/\S/) > m[1]!.length); j++) block.push(lines[j]!);
    exprs.push(block.join("\n"));
  });
  return exprs;
}

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  gridPos: { x: number; y: number; w: number; h: number };
}

describe("alerts and dashboard query what the code registers", () => {
  const alerts = readFileSync(join(DEPLOY, "prometheus/alerts.yml"), "utf8");
  const dashboard = JSON.parse(readFileSync(join(DEPLOY, "grafana/dashboards/chirp.json"), "utf8")) as {
    uid: string;
    panels: Panel[];
    templating: { list: { name: string; query?: unknown }[] };
  };
  const panels = dashboard.panels.filter((p) => p.type !== "row");
  const dashboardExprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it("every alert rule's metrics exist", async () => {
    const series = await registeredSeries();
    const exprs = ruleExprs(alerts);
    expect(exprs.length).toBeGreaterThanOrEqual(20);
    for (const expr of exprs) for (const name of metricNames(expr)) expect(series.has(name), `${name} in ${expr}`).toBe(true);
  });

  it("has the alerts an operator needs: instance down, error ratio, p99, replication lag, consumer lag, outbox backlog", () => {
    const names = [...alerts.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    for (const want of ["ChirpInstanceDown", "ChirpRpcErrorRatioHigh", "ChirpRpcLatencyP99High", "ChirpReplicaLagHigh", "ChirpConsumerLagHigh", "ChirpOutboxBacklogHigh"]) {
      expect(names).toContain(want);
    }
    // Every rule has a severity and a summary.
    const rules = alerts.split(/\n\s+- alert: /).slice(1);
    expect(rules).toHaveLength(names.length);
    for (const rule of rules) {
      expect(rule, rule.split("\n")[0]).toMatch(/severity: (warning|critical)/);
      expect(rule, rule.split("\n")[0]).toMatch(/summary: /);
    }
  });

  it("every dashboard query's metrics exist", async () => {
    const series = await registeredSeries();
    expect(dashboardExprs.length).toBeGreaterThanOrEqual(25);
    for (const expr of dashboardExprs) {
      const names = metricNames(expr);
      expect(names.length > 0 || /\bup\{/.test(expr), expr).toBe(true);
      for (const name of names) expect(series.has(name), `${name} in ${expr}`).toBe(true);
    }
  });

  it("charts RPC rate, errors and p99, DB p99, replication lag, outbox backlog, consumer lag, fan-out, cache hit ratio and event-loop lag", () => {
    const all = dashboardExprs.join("\n");
    for (const want of [
      "rate(chirp_rpc_server_duration_seconds_count",
      "histogram_quantile(0.99, sum by (job, service, le) (rate(chirp_rpc_server_duration_seconds_bucket",
      "histogram_quantile(0.99, sum by (shard, role, le) (rate(chirp_db_query_duration_seconds_bucket",
      "chirp_db_replica_lag_seconds",
      "chirp_relay_backlog",
      "chirp_bus_consumer_lag_seconds",
      "chirp_timeline_fanout_deliveries_total",
      "chirp_timeline_fanout_lag_seconds_bucket",
      "chirp_tweet_cache_reads_total{result=~\"hit|tombstone\"}",
      "chirp_nodejs_eventloop_lag_p99_seconds",
    ]) {
      expect(all).toContain(want);
    }
  });

  it("lays panels out without overlap, each with a title and a description", () => {
    const taken = new Set<string>();
    for (const p of dashboard.panels) {
      expect(p.title, JSON.stringify(p.gridPos)).not.toBe("");
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
          expect(taken.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          taken.add(`${x},${y}`);
        }
      }
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    }
    for (const p of panels) expect((p as unknown as { description?: string }).description, p.title).toBeTruthy();
  });
});
