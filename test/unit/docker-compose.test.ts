import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

/**
 * `docker-compose config` once for the file (the resolved file, which it
 * validates first): docker-compose is a Python program that takes a second or
 * more of CPU per run, and every check here reads the same output.
 */
let resolved: Promise<{ stdout: string; stderr: string }> | undefined;
const config = (): Promise<{ stdout: string; stderr: string }> => (resolved ??= run("docker-compose", ["config"]));

/** The services `docker-compose config` lists: the keys of its top-level `services:` map. */
function servicesOf(config: string): string[] {
  const start = config.search(/^services:$/m);
  if (start < 0) return [];
  const rest = config.slice(start + "services:".length + 1);
  const end = rest.search(/^\S/m);
  const block = end < 0 ? rest : rest.slice(0, end);
  return [...block.matchAll(/^ {2}([A-Za-z0-9._-]+):$/gm)].map((m) => m[1]!);
}

const MESH = ["user", "graph", "tweet", "timeline", "search", "media", "notification"];

/** One service's block of `docker-compose config` output. */
function serviceBlock(config: string, name: string): string {
  const start = config.search(new RegExp(`^  ${name}:$`, "m"));
  if (start < 0) return "";
  const rest = config.slice(start + 1);
  const end = rest.search(/^(?: {2})?\S/m);
  return config.slice(start, end < 0 ? undefined : start + 1 + end);
}

function hasDockerCompose(): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => dir !== "" && existsSync(join(dir, "docker-compose")));
}

// No Docker engine runs on the development machines, so the file cannot be
// started here; it must at least parse. .ci/run installs docker-compose.
describe.skipIf(!hasDockerCompose())("docker-compose.yml", () => {
  it("is a valid compose file", async () => {
    const { stdout, stderr } = await config();
    expect(stderr).toBe("");
    expect(stdout).toMatch(/^services:$/m);
  });

  it("defines two instances of every service, the gateway, the infrastructure and the monitoring", async () => {
    const services = servicesOf((await config()).stdout);
    for (const name of ["gateway", "redis", "nats", "migrate", "keys", "topology", "rs0-a", "rs0-b", "rs0-c", "rs1-a", "rs1-b", "rs1-c", "prometheus", "grafana"]) {
      expect(services).toContain(name);
    }
    for (const name of MESH) expect(services.filter((s) => s.startsWith(`${name}-`)).sort(), name).toEqual([`${name}-1`, `${name}-2`]);
  });

  it("gives the gateway and every service both instances of every service", async () => {
    const { stdout } = await config();
    for (const name of MESH) {
      const port = 50051 + MESH.indexOf(name);
      const line = `CHIRP_${name.toUpperCase()}_ADDR: ${name}-1:${port},${name}-2:${port}`;
      // In the gateway's environment and in each of the twelve service containers'.
      expect(stdout.split(line).length - 1, line).toBe(1 + 2 * MESH.length);
    }
  });

  it("mounts the Prometheus config and rules and Grafana's provisioning from deploy/", async () => {
    const { stdout } = await config();
    expect(stdout).toMatch(/deploy\/prometheus:\/etc\/prometheus:ro/);
    expect(stdout).toContain("--config.file=/etc/prometheus/prometheus.yml");
    expect(stdout).toMatch(/deploy\/grafana\/provisioning:\/etc\/grafana\/provisioning:ro/);
    expect(stdout).toMatch(/deploy\/grafana\/dashboards:\/etc\/grafana\/dashboards:ro/);
  });
  it("has Prometheus scrape every Chirp process, on its metrics port", async () => {
    const { stdout } = await config();
    const prometheus = readFileSync(new URL("../../deploy/prometheus/prometheus.yml", import.meta.url), "utf8");
    const targets = new Set([...prometheus.matchAll(/"([a-z0-9-]+:\d+)"/g)].map((m) => m[1]!));
    const processes = [...MESH.flatMap((name) => [`${name}-1`, `${name}-2`]), "topology", "topology-standby", "gateway"];
    for (const name of processes) {
      const block = serviceBlock(stdout, name);
      const port = /(?:METRICS_PORT|GATEWAY_PORT): '(\d+)'/.exec(block)?.[1];
      expect(port, `${name}'s metrics port`).toBeDefined();
      expect(targets, `${name}:${port}`).toContain(`${name}:${port}`);
    }
    // And nothing else but Prometheus itself.
    expect(targets.size).toBe(processes.length + 1);
  });
});
