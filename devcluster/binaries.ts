import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

export type ServerBinary = "mariadbd" | "mariadb-install-db" | "redis-server" | "nats-server";

// Server binaries often live in sbin dirs that are not on a normal user's PATH.
export const EXTRA_BINARY_DIRS: readonly string[] = [
  "/usr/sbin",
  "/usr/local/sbin",
  "/opt/homebrew/bin",
  "/opt/homebrew/sbin",
];

const INSTALL_HINTS: Record<ServerBinary, { apt: string; brew: string; envVar: string }> = {
  mariadbd: { apt: "mariadb-server", brew: "mariadb", envVar: "MYSQL_URL" },
  "mariadb-install-db": { apt: "mariadb-server", brew: "mariadb", envVar: "MYSQL_URL" },
  "redis-server": { apt: "redis-server", brew: "redis", envVar: "REDIS_URL" },
  "nats-server": { apt: "nats-server", brew: "nats-server", envVar: "NATS_URL" },
};

export class MissingBinaryError extends Error {
  override readonly name = "MissingBinaryError";
  readonly code = "MISSING_BINARY";
  constructor(readonly binary: ServerBinary) {
    const hint = INSTALL_HINTS[binary];
    super(
      `${binary} not found: install it with \`apt-get install ${hint.apt}\` (Debian/Ubuntu), ` +
        `\`brew install ${hint.brew}\` (macOS), or run \`docker compose up\` and set ${hint.envVar}`,
    );
  }
}

export interface FindBinaryOptions {
  /** The PATH to search, in the platform's format. */
  path?: string | undefined;
  /** Searched after PATH; defaults to EXTRA_BINARY_DIRS. */
  extraDirs?: readonly string[];
}

/** The absolute path of an executable `name`, or MissingBinaryError. */
export function findBinary(name: ServerBinary, opts: FindBinaryOptions = {}): string {
  const dirs = [...(opts.path ?? "").split(delimiter), ...(opts.extraDirs ?? EXTRA_BINARY_DIRS)];
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new MissingBinaryError(name);
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
