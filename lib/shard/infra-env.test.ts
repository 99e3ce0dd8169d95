import { describe, expect, it } from "vitest";
import { loadShardConfig } from "./shard-config.js";
import { InfraEnvError, parseInfraEnv, parseMysqlUrl, replicaSetEnvVar } from "./infra-env.js";

const config = loadShardConfig("local");

describe("parseMysqlUrl", () => {
  it("reads credentials and a primary,replica host list", () => {
    expect(parseMysqlUrl("mysql://app:p%40ss@db1:3307,db2:3308")).toEqual({
      user: "app",
      password: "p@ss",
      hosts: [
        { host: "db1", port: 3307 },
        { host: "db2", port: 3308 },
      ],
    });
  });
  it("defaults the port and accepts IPv6 and a trailing path", () => {
    expect(parseMysqlUrl("mysql://root@[::1]/chirp").hosts).toEqual([{ host: "::1", port: 3306 }]);
  });
  it("rejects other schemes and missing users", () => {
    expect(() => parseMysqlUrl("postgres://u:p@h:1")).toThrow();
    expect(() => parseMysqlUrl("mysql://@h:1")).toThrow();
  });
});

describe("parseInfraEnv", () => {
  it("gives nothing when nothing is set (all local)", () => {
    expect(parseInfraEnv({ PATH: "/usr/bin" }, config)).toEqual({});
  });

  it("puts every replica set on MYSQL_URL's server", () => {
    const ext = parseInfraEnv({ MYSQL_URL: "mysql://root:pw@127.0.0.1:3306" }, config);
    expect(ext.mysql?.replicaSets.map((r) => [r.name, r.primary.port, r.replicas.length])).toEqual([
      ["rs0", 3306, 0],
      ["rs1", 3306, 0],
    ]);
    expect(ext.mysql?.appUser).toEqual({ user: "root", password: "pw" });
  });

  it("takes per-replica-set URLs and names members after the config", () => {
    const ext = parseInfraEnv(
      {
        [replicaSetEnvVar("rs0")]: "mysql://a:b@h0:1,h0r:2",
        MYSQL_URL_RS1: "mysql://a:b@h1:3,h1r:4",
        MYSQL_APP_USER: "chirp_app",
        MYSQL_APP_PASSWORD: "s",
        REDIS_URL: "redis://127.0.0.1:6380",
        NATS_URL: "nats://127.0.0.1:4223,nats://127.0.0.1:4224",
      },
      config,
    );
    expect(ext.mysql?.replicaSets[1]).toEqual({
      name: "rs1",
      primary: { name: "rs1-a", host: "h1", port: 3 },
      replicas: [{ name: "rs1-b", host: "h1r", port: 4 }],
    });
    expect(ext.mysql?.appUser).toEqual({ user: "chirp_app", password: "s" });
    expect(ext.redisUrl).toBe("redis://127.0.0.1:6380");
    expect(ext.natsUrl).toContain("4224");
  });

  it("reports every problem at once", () => {
    try {
      parseInfraEnv({ MYSQL_URL_RS0: "mysql://a:b@h:1", REDIS_URL: "http://x", NATS_URL: "bogus" }, config);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InfraEnvError);
      const problems = (err as InfraEnvError).problems.join("\n");
      expect(problems).toMatch(/MYSQL_URL_RS1/);
      expect(problems).toMatch(/REDIS_URL/);
      expect(problems).toMatch(/NATS_URL/);
    }
  });
});
