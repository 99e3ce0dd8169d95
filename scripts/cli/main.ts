// The chirp CLI: `npx chirp <command> [args]` (bin/chirp.js runs this file
// through tsx; `node --import tsx scripts/cli/main.ts ...` works too).
//
// Each command is scripts/cli/<command>.ts exporting
//   async function run(args: string[]): Promise<number>   // the exit code
// and is loaded only when invoked. To add one, write the file and list it in
// COMMANDS. A listed command whose file is absent is reported as unavailable.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./args.js";

export const COMMANDS: Readonly<Record<string, string>> = {
  "shard-of": "<userId | @handle>   keyspace id and shard of a user's rows or a handle's lookup row",
  vschema: "                     the keyspace's Vitess VSchema (JSON)",
  topology: "<subcommand> ...     the live topology: primaries per shard, failover (own usage)",
  seed: "[--users N] [--gateway URL] load data/socfb-Reed98 through the public API (idempotent)",
};

export type Command = (args: string[]) => Promise<number>;

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, text]) => `  chirp ${name.padEnd(width)} ${text}`);
  return ["usage: chirp <command> [args]", "", "commands:", ...lines, "", "shard-of and vschema take --env <name>: shard-config/<name>.json (default local)"].join("\n");
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(`${usage()}\n`);
    return EXIT_OK;
  }
  if (name === undefined || !Object.hasOwn(COMMANDS, name)) {
    const what = name === undefined ? "missing command" : `unknown command ${JSON.stringify(name)}`;
    process.stderr.write(`chirp: ${what}\n${usage()}\n`);
    return EXIT_USAGE;
  }
  const file = new URL(`./${name}.ts`, import.meta.url);
  if (!existsSync(fileURLToPath(file))) {
    process.stderr.write(`chirp: command ${JSON.stringify(name)} is not available in this checkout (no scripts/cli/${name}.ts)\n`);
    return EXIT_FAILURE;
  }
  try {
    const mod = (await import(file.href)) as { run?: unknown };
    if (typeof mod.run !== "function") throw new Error(`scripts/cli/${name}.ts does not export run(args)`);
    return await (mod.run as Command)(args);
  } catch (err) {
    process.stderr.write(`chirp ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
