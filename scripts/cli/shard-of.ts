// chirp shard-of <userId | @handle>: where a row lives.
//   <userId>  keyspace id (Vitess hash of the id) and the shard of the user's rows
//   @handle   keyspace id (binary_md5 of the lower-cased handle) and the shard
//             of the handle's user_handles row (the lookup table)
import { loadShardConfig } from "../../lib/shard/shard-config.js";
import { ShardMap } from "../../lib/shard/keyrange.js";
import { VindexError, handleKeyspaceId, hashVindex } from "../../lib/shard/vindex.js";
import { EXIT_OK, EXIT_USAGE, UsageError, rejectUnknownFlags, takeOption } from "./args.js";

export const usage = "chirp shard-of [--env <name>] <userId | @handle>";

export const help = [
  `usage: ${usage}`,
  "",
  "Prints the keyspace id (hex) and the shard of a row, as the shard router computes them:",
  "  <userId>   a user id (decimal): where that user's rows live (hash vindex of the id)",
  "  @handle    where the handle's lookup row lives (binary_md5 of the lower-cased handle)",
  "",
  "options:",
  "  --env <name>   shard topology shard-config/<name>.json [local]",
  "",
  "example: chirp shard-of 1   ->   166b40b44aba4bd6 -40",
].join("\n");

// The handle rule of the user API (user_service.proto).
const HANDLE_RE = /^[A-Za-z0-9_]{1,15}$/;

export async function run(argv: string[]): Promise<number> {
  const args = [...argv];
  let ksid: Buffer;
  let env: string;
  try {
    env = takeOption(args, "env", "local");
    rejectUnknownFlags(args);
    if (args.length !== 1) throw new UsageError(`want one user id or @handle, got ${args.length} arguments`);
    ksid = keyspaceIdOf(args[0] as string);
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof VindexError)) throw err;
    process.stderr.write(`chirp shard-of: ${err.message} (usage: ${usage})\n`);
    return EXIT_USAGE;
  }
  const shard = new ShardMap(loadShardConfig(env).shards).shardFor(ksid);
  process.stdout.write(`${ksid.toString("hex")} ${shard.name}\n`);
  return EXIT_OK;
}

function keyspaceIdOf(arg: string): Buffer {
  if (arg.startsWith("@")) {
    const handle = arg.slice(1);
    if (!HANDLE_RE.test(handle)) throw new UsageError(`bad handle ${JSON.stringify(arg)}: want @ and 1-15 of [A-Za-z0-9_]`);
    return handleKeyspaceId(handle);
  }
  return hashVindex(arg);
}
