// Argument helpers shared by the chirp subcommands.

/** Bad command-line input: the command prints the message and exits with 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * Removes `--name value` or `--name=value` from `args` and returns the value
 * (or `fallback` when absent). Any other `--flag` is left for the caller.
 */
export function takeOption(args: string[], name: string, fallback: string): string {
  let value = fallback;
  for (let i = 0; i < args.length; ) {
    const arg = args[i] as string;
    if (arg === `--${name}`) {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) throw new UsageError(`--${name} needs a value`);
      value = next;
      args.splice(i, 2);
    } else if (arg.startsWith(`--${name}=`)) {
      value = arg.slice(name.length + 3);
      args.splice(i, 1);
    } else i++;
  }
  return value;
}

/** Rejects any `--flag` the command does not know ("-" alone and negative-looking ids are positional). */
export function rejectUnknownFlags(args: readonly string[]): void {
  const flag = args.find((a) => a.startsWith("--"));
  if (flag !== undefined) throw new UsageError(`unknown option ${flag}`);
}
