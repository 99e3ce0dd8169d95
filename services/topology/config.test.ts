import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/config.js";
import { loadTopologyConfig } from "./config.js";

const BASE = {
  NATS_URL: "nats://127.0.0.1:4222",
  MYSQL_URL_RS0: "mysql://chirp_admin:s%40cret@127.0.0.1:3306,127.0.0.1:3307",
  MYSQL_URL_RS1: "mysql://chirp_admin:s%40cret@127.0.0.1:3308,127.0.0.1:3309",
};

describe("loadTopologyConfig", () => {
  it("reads the admin account, the members named as the shard config names them, and the defaults", () => {
    const c = loadTopologyConfig(BASE);
    expect(c.admin).toEqual({ user: "chirp_admin", password: "s@cret" });
    expect(c.repl).toEqual(c.admin);
    expect(c.replicaSets.map((r) => [r.name, r.primary.name, r.replicas.map((m) => `${m.name}:${m.port}`)])).toEqual([
      ["rs0", "rs0-a", ["rs0-b:3307"]],
      ["rs1", "rs1-a", ["rs1-b:3309"]],
    ]);
    expect(c).toMatchObject({ probeIntervalMs: 250, probeTimeoutMs: 500, failuresToFailover: 3, heartbeatIntervalMs: 250, metricsPort: 9110 });
    expect(c).toMatchObject({ heartbeatOnDemandMs: 5000, stateMs: 1000, quietStateMs: 2000 });
  });

  it("takes an on-demand window of 0 (heartbeats always) or one longer than the routers' asks", () => {
    expect(loadTopologyConfig({ ...BASE, CHIRP_TOPOLOGY_HEARTBEAT_ON_DEMAND_MS: "0" }).heartbeatOnDemandMs).toBe(0);
    expect(loadTopologyConfig({ ...BASE, CHIRP_TOPOLOGY_HEARTBEAT_ON_DEMAND_MS: "10000" }).heartbeatOnDemandMs).toBe(10_000);
    expect(() => loadTopologyConfig({ ...BASE, CHIRP_TOPOLOGY_HEARTBEAT_ON_DEMAND_MS: "1500" })).toThrow(ConfigError);
  });

  it("takes a separate replication account and tuned timings", () => {
    const c = loadTopologyConfig({
      ...BASE,
      CHIRP_TOPOLOGY_REPL_USER: "repl",
      CHIRP_TOPOLOGY_REPL_PASSWORD: "pw",
      CHIRP_TOPOLOGY_PROBE_MS: "100",
      CHIRP_TOPOLOGY_FAILURES: "5",
    });
    expect(c.repl).toEqual({ user: "repl", password: "pw" });
    expect([c.probeIntervalMs, c.failuresToFailover]).toEqual([100, 5]);
  });

  it("lists every problem at once", () => {
    let err: unknown;
    try {
      loadTopologyConfig({ MYSQL_URL_RS0: BASE.MYSQL_URL_RS0, CHIRP_TOPOLOGY_FAILURES: "0" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    expect(problems).toMatch(/MYSQL_URL_RS1/);
    expect(problems).toMatch(/NATS_URL/);
    expect(problems).toMatch(/CHIRP_TOPOLOGY_FAILURES/);
  });
});
