// NATS_URL as every process reads it: one or more servers, comma-separated,
// each `nats://[user:password@]host:port`. nats.js takes credentials only as
// connect options, never from a server URL, so they are lifted out here once:
// the server list keeps host and port only (it is what gets logged), and
// user/pass go to the connection. A NATS account per user isolates subjects,
// streams and KV buckets, which is how several Chirp deployments (or test
// files) share one nats-server without seeing each other's events.

export interface NatsServers {
  /** `nats://host:port` of each server, without credentials. */
  readonly servers: string[];
  readonly user?: string;
  readonly pass?: string;
}

export class NatsUrlError extends Error {
  override readonly name = "NatsUrlError";
}

/** Parses NATS_URL; throws NatsUrlError for a malformed list or servers with different credentials. */
export function parseNatsUrl(url: string): NatsServers {
  const servers: string[] = [];
  let creds: { user: string; pass: string } | undefined;
  for (const raw of url.split(",").map((s) => s.trim())) {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new NatsUrlError("NATS_URL: want nats://[user:password@]host:port (comma-separated for several servers)");
    }
    if (!["nats:", "tls:", "ws:", "wss:"].includes(u.protocol) || u.hostname === "") {
      throw new NatsUrlError("NATS_URL: want nats://[user:password@]host:port (comma-separated for several servers)");
    }
    const here = u.username === "" ? undefined : { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
    if (servers.length > 0 && (here?.user !== creds?.user || here?.pass !== creds?.pass)) {
      throw new NatsUrlError("NATS_URL: every server must carry the same credentials");
    }
    creds = here;
    servers.push(`${u.protocol}//${u.host}`);
  }
  return creds === undefined ? { servers } : { servers, user: creds.user, pass: creds.pass };
}
