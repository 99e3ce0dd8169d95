import { describe, expect, it } from "vitest";
import { ConfigError } from "../config.js";
import { loadShardConfig } from "./shard-config.js";
import { loadDbConfig, topologyFromEnv } from "./config.js";

const shardConfig = loadShardConfig("local");
const urls = {
  MYSQL_URL_RS0: "mysql://app:s%40cret@10.0.0.1:3306,10.0.0.2:3307",
  MYSQL_URL_RS1: "mysql://app:s%40cret@10.0.1.1",
};

describe("topologyFromEnv", () => {
  it("builds epoch 0 from MYSQL_URL_<RS>, members named after the shard config", () => {
    const { topology, credentials } = topologyFromEnv(urls, shardConfig);
    expect(topology.epoch).toBe(0);
    expect(topology.keyspace).toBe("chirp");
    expect(topology.replicaSets).toEqual([
      { name: "rs0", primary: { name: "rs0-a", host: "10.0.0.1", port: 3306 }, replicas: [{ name: "rs0-b", host: "10.0.0.2", port: 3307 }] },
      { name: "rs1", primary: { name: "rs1-a", host: "10.0.1.1", port: 3306 }, replicas: [] },
    ]);
    expect(topology.shards.map((s) => [s.name, s.replicaSet, s.database])).toEqual([
      ["-40", "rs0", "chirp_x40"],
      ["40-80", "rs0", "chirp_40x80"],
      ["80-c0", "rs1", "chirp_80xc0"],
      ["c0-", "rs1", "chirp_c0x"],
    ]);
    expect(credentials).toEqual({ user: "app", password: "s@cret" });
  });

  it("prefers MYSQL_APP_USER over the URL's account", () => {
    const { credentials } = topologyFromEnv({ ...urls, MYSQL_APP_USER: "chirp_app", MYSQL_APP_PASSWORD: "pw" }, shardConfig);
    expect(credentials).toEqual({ user: "chirp_app", password: "pw" });
  });
});

describe("loadDbConfig", () => {
  it("has defaults", () => {
    const c = loadDbConfig({ ...urls, NATS_URL: "nats://127.0.0.1:4222" }, shardConfig);
    expect(c).toMatchObject({
      natsUrl: "nats://127.0.0.1:4222",
      maxReplicaLagMs: 1000,
      poolSize: 8,
      queryTimeoutMs: 5000,
      failoverWaitMs: 10_000,
    });
  });

  it("reads CHIRP_DB_* and lists every problem at once", () => {
    const c = loadDbConfig({ ...urls, CHIRP_DB_MAX_LAG_MS: "250", CHIRP_DB_POOL_SIZE: "4", CHIRP_DB_FAILOVER_WAIT_MS: "0" }, shardConfig);
    expect([c.maxReplicaLagMs, c.poolSize, c.failoverWaitMs, c.natsUrl]).toEqual([250, 4, 0, undefined]);
    let caught: unknown;
    try {
      loadDbConfig({ CHIRP_DB_POOL_SIZE: "0", CHIRP_DB_QUERY_TIMEOUT_MS: "soon" }, shardConfig);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems.join("\n");
    expect(problems).toContain("CHIRP_DB_POOL_SIZE");
    expect(problems).toContain("CHIRP_DB_QUERY_TIMEOUT_MS");
    expect(problems).toContain("MYSQL_URL");
  });
});
