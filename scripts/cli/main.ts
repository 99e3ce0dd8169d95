// The chirp CLI: `npx chirp <command> [args]` (bin/chirp.js runs this file
// through tsx; `node --import tsx scripts/cli/main.ts ...` works too).
//
// Each command is scripts/cli/<command>.ts exporting
//   async function run(args: string[]): Promise<number>   // the exit code
//   const help: string                                    // its usage and options
// and is loaded only when invoked. To add one, write the file and list it in
// COMMANDS. A listed command whose file is absent is reported as unavailable.
// `chirp <command> --help` (or -h, or `chirp help <command>`) prints the
// command's help and exits 0 without running it.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from "./args.js";

export const COMMANDS: Readonly<Record<string, string>> = {
  "shard-of": "<userId | @handle>   keyspace id and shard of a user's rows or a handle's lookup row",
  vschema: "                     the keyspace's Vitess VSchema (JSON)",
  topology: "[show] [--json]       the live topology: primaries per shard, replica lag and state",
  seed: "[--users N] [--gateway URL] load data/socfb-Reed98 through the public API (idempotent)",
  capacity: "[--dau N] ... [--json]  QPS, storage, bandwidth, cache, shards and instances from usage estimates",
  reshard: "--from -40 --to -20,20-40 | status | abort   split a shard's keyrange online (copy, catch up, verify)",
};

export type Command = (args: string[]) => Promise<number>;

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, text]) => `  chirp ${name.padEnd(width)} ${text}`);
  return ["usage: chirp <command> [args]", "", "commands:", ...lines, "", "chirp <command> --help shows a command's options."].join("\n");
}

export async function main(argv: readonly string[]): Promise<number> {
  let [name, ...args] = argv;
  if (name === "help" || name === "--help" || name === "-h") {
    if (args[0] === undefined) {
      process.stdout.write(`${usage()}\n`);
      return EXIT_OK;
    }
    // `chirp help <command>` is `chirp <command> --help`.
    name = args[0];
    args = ["--help"];
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
    const mod = (await import(file.href)) as { run?: unknown; help?: unknown };
    if (args.includes("--help") || args.includes("-h")) {
      if (typeof mod.help !== "string") throw new Error(`scripts/cli/${name}.ts does not export help`);
      process.stdout.write(`${mod.help}\n`);
      return EXIT_OK;
    }
    if (typeof mod.run !== "function") throw new Error(`scripts/cli/${name}.ts does not export run(args)`);
    return await (mod.run as Command)(args);
  } catch (err) {
    process.stderr.write(`chirp ${name}: ${err instanceof Error ? err.message : String(err)}${err instanceof UsageError ? " (--help for usage)" : ""}\n`);
    return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
