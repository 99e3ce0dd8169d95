// Admin-side MySQL connections used while bringing the cluster up.
import { createConnection, type Connection } from "mysql2/promise";
import type { HostPort, MysqlCredentials } from "../shard/types.js";

export interface ConnectOptions {
  database?: string;
  multipleStatements?: boolean;
  connectTimeoutMs?: number;
}

export function connectMysql(addr: HostPort, creds: MysqlCredentials, opts: ConnectOptions = {}): Promise<Connection> {
  return createConnection({
    host: addr.host,
    port: addr.port,
    user: creds.user,
    password: creds.password,
    ...(opts.database === undefined ? {} : { database: opts.database }),
    multipleStatements: opts.multipleStatements ?? false,
    connectTimeout: opts.connectTimeoutMs ?? 5_000,
    supportBigNumbers: true,
    bigNumberStrings: true,
    timezone: "Z",
  });
}

/** Runs `fn` on a fresh connection and always closes it. */
export async function withMysql<T>(
  addr: HostPort,
  creds: MysqlCredentials,
  fn: (conn: Connection) => Promise<T>,
  opts: ConnectOptions = {},
): Promise<T> {
  const conn = await connectMysql(addr, creds, opts);
  try {
    return await fn(conn);
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

/** Backquotes a database/table name after checking it is a plain identifier. */
export function quoteIdent(name: string): string {
  if (!/^[A-Za-z0-9_$]+$/.test(name)) throw new Error(`unsafe identifier ${JSON.stringify(name)}`);
  return `\`${name}\``;
}
