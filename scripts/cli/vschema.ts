// chirp vschema: prints the keyspace's Vitess VSchema, ready for
// `vtctldclient ApplyVSchema --vschema-file <file> <keyspace>`.
import { loadShardConfig } from "../../lib/shard/shard-config.js";
import { buildVSchema } from "../../shard-config/vschema.js";
import { EXIT_OK, EXIT_USAGE, UsageError, rejectUnknownFlags, takeOption } from "./args.js";

export const usage = "chirp vschema [--env <name>]";

export const help = [
  `usage: ${usage}`,
  "",
  "Prints the keyspace's Vitess VSchema (JSON): which column shards each table and with",
  "which vindex, ready for `vtctldclient ApplyVSchema --vschema-file <file> <keyspace>`.",
  "",
  "options:",
  "  --env <name>   shard topology shard-config/<name>.json [local]",
].join("\n");

export async function run(argv: string[]): Promise<number> {
  const args = [...argv];
  let env: string;
  try {
    env = takeOption(args, "env", "local");
    rejectUnknownFlags(args);
    if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`chirp vschema: ${err.message} (usage: ${usage})\n`);
    return EXIT_USAGE;
  }
  process.stdout.write(`${JSON.stringify(buildVSchema(loadShardConfig(env)), null, 2)}\n`);
  return EXIT_OK;
}
