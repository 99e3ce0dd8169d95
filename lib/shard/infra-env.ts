// Infra given from outside (docker compose, a shared dev server): MYSQL_URL or
// MYSQL_URL_<RS>, REDIS_URL, NATS_URL. Whatever is not given is started locally.
import type { ShardConfig } from "./shard-config.js";
import type { HostPort, MemberAddress, MysqlCredentials, ReplicaSetInfo } from "./types.js";

export type InfraEnv = Readonly<Record<string, string | undefined>>;

export interface ExternalMysql {
  replicaSets: ReplicaSetInfo[];
  adminUser: MysqlCredentials;
  appUser: MysqlCredentials;
}

export interface ExternalInfra {
  mysql?: ExternalMysql;
  redisUrl?: string;
  natsUrl?: string;
}

export class InfraEnvError extends Error {
  override readonly name = "InfraEnvError";
  readonly code = "BAD_INFRA_ENV";
  constructor(readonly problems: readonly string[]) {
    super(`bad infrastructure settings: ${problems.join("; ")}`);
  }
}

export interface ParsedMysqlUrl extends MysqlCredentials {
  /** First is the primary, the rest replicas. */
  hosts: HostPort[];
}

/** `MYSQL_URL_RS0` for replica set `rs0`. */
export function replicaSetEnvVar(replicaSet: string): string {
  return `MYSQL_URL_${replicaSet.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/**
 * `mysql://user:pass@primary:3306,replica:3307[/ignored][?ignored]`. WHATWG URL
 * cannot parse a host list, hence the hand parser. Percent-encoding is decoded
 * in the user and password.
 */
export function parseMysqlUrl(url: string): ParsedMysqlUrl {
  const m = /^mysql:\/\/([^@/]*)@([^/?#]+)(?:\/[^?#]*)?(?:\?[^#]*)?$/.exec(url);
  if (!m) throw new Error("want mysql://user:password@host:port[,replica:port...]");
  const userinfo = m[1] ?? "";
  const colon = userinfo.indexOf(":");
  const user = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
  const password = colon < 0 ? "" : decodeURIComponent(userinfo.slice(colon + 1));
  if (user === "") throw new Error("no user name");
  const hosts = (m[2] ?? "").split(",").map((h) => parseHostPort(h.trim()));
  return { user, password, hosts };
}

function parseHostPort(text: string): HostPort {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) throw new Error(`bad host ${JSON.stringify(text)}`);
  const host = (m[1] ?? "").replace(/^\[(.*)\]$/, "$1");
  const port = m[2] === undefined ? 3306 : Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`bad port in ${JSON.stringify(text)}`);
  return { host, port };
}

/**
 * Reads the infra env vars; reports every problem at once. What they mean,
 * for every reader (services, the topology manager, `scripts/migrate.ts`,
 * and `npm start`, which starts local servers for those not set):
 *
 * MYSQL_URL: one MySQL server for every replica set of the shard config:
 * `mysql://user:password@host:port`. A host list
 * (`mysql://user:password@primary:3306,replica:3307`) is the primary, then
 * its replicas. Services need it or every MYSQL_URL_<RS>. The topology
 * manager takes the admin account from it (it promotes and fences members).
 *
 * MYSQL_URL_<RS>: one replica set's servers (`MYSQL_URL_` and the set's name
 * upper-cased, e.g. `MYSQL_URL_RS0`), same format, primary first; overrides
 * MYSQL_URL for that set. Without MYSQL_URL every set needs one. All must use
 * the same user and password.
 *
 * MYSQL_APP_USER: with MySQL given by URL, the account services use instead
 * of the URL's (the URL's account runs migrations, so it must be able to
 * create databases and tables; keep it out of services).
 *
 * MYSQL_APP_PASSWORD: MYSQL_APP_USER's password (empty when not set).
 *
 * REDIS_URL: `redis://host:port` (or `rediss://`): caches, home timelines,
 * trends and the gateway's rate limits. Without it services read MySQL
 * uncached, timelines are unavailable and the gateway does not rate limit.
 *
 * NATS_URL: `nats://[user:password@]host:port`, comma-separated for several
 * servers, JetStream enabled: events, the live shard topology and snowflake
 * node ids. With credentials Chirp logs in as that user, whose NATS account
 * holds Chirp's subjects, stream and KV buckets, so several deployments can
 * share one NATS. Without it a service mints no ids (writes that need one
 * answer Unavailable), events stay in the outbox, and failovers are not
 * followed.
 */
export function parseInfraEnv(env: InfraEnv, config: ShardConfig): ExternalInfra {
  const problems: string[] = [];
  const out: ExternalInfra = {};
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };

  const shared = value("MYSQL_URL");
  const perSet = config.replicaSets.map((rs) => ({ rs, name: replicaSetEnvVar(rs.name), url: value(replicaSetEnvVar(rs.name)) }));
  const given = perSet.filter((p) => p.url !== undefined);
  if (shared !== undefined || given.length > 0) {
    if (shared === undefined && given.length < perSet.length) {
      const missing = perSet.filter((p) => p.url === undefined).map((p) => p.name);
      problems.push(`${missing.join(", ")} not set (${given.map((p) => p.name).join(", ")} is): set all of them, or MYSQL_URL`);
    }
    const replicaSets: ReplicaSetInfo[] = [];
    let creds: MysqlCredentials | undefined;
    for (const { rs, name, url } of perSet) {
      const source = url === undefined ? "MYSQL_URL" : name;
      const text = url ?? shared;
      if (text === undefined) continue;
      let parsed: ParsedMysqlUrl;
      try {
        parsed = parseMysqlUrl(text);
      } catch (err) {
        problems.push(`${source}: ${(err as Error).message}`);
        continue;
      }
      if (creds && (creds.user !== parsed.user || creds.password !== parsed.password)) {
        problems.push(`${source}: every replica set must use the same user and password`);
      }
      creds ??= { user: parsed.user, password: parsed.password };
      // Name URL-given servers after the config's members where they line up.
      const names = [...rs.members.filter((m) => m.role === "primary"), ...rs.members.filter((m) => m.role === "replica")].map(
        (m) => m.name,
      );
      const members: MemberAddress[] = parsed.hosts.map((h, i) => ({ name: names[i] ?? `${rs.name}-${i}`, ...h }));
      const [primary, ...replicas] = members;
      if (primary) replicaSets.push({ name: rs.name, primary, replicas });
    }
    const appUser = value("MYSQL_APP_USER");
    const appPassword = env["MYSQL_APP_PASSWORD"] ?? "";
    if (appUser === undefined && env["MYSQL_APP_PASSWORD"] !== undefined) problems.push("MYSQL_APP_PASSWORD is set without MYSQL_APP_USER");
    if (creds && problems.length === 0) {
      out.mysql = {
        replicaSets,
        adminUser: creds,
        appUser: appUser === undefined ? creds : { user: appUser, password: appPassword },
      };
    }
  }

  const redisUrl = value("REDIS_URL");
  if (redisUrl !== undefined) {
    if (checkUrl(redisUrl, ["redis:", "rediss:"])) out.redisUrl = redisUrl;
    else problems.push("REDIS_URL: want redis://host:port or rediss://...");
  }
  const natsUrl = value("NATS_URL");
  if (natsUrl !== undefined) {
    // nats.js accepts a comma-separated server list.
    if (natsUrl.split(",").every((u) => checkUrl(u.trim(), ["nats:", "tls:", "ws:", "wss:"]))) out.natsUrl = natsUrl;
    else problems.push("NATS_URL: want nats://host:port (comma-separated for several servers)");
  }

  if (problems.length > 0) throw new InfraEnvError(problems);
  return out;
}

function checkUrl(text: string, protocols: readonly string[]): boolean {
  try {
    const u = new URL(text);
    return protocols.includes(u.protocol) && u.hostname !== "";
  } catch {
    return false;
  }
}
