// `--help` for the benchmark scripts: checked before their own argument
// parsing, so that it works alongside any other flags.

/** Prints `usage` and exits when the command line asks for help (--help or -h). */
export function exitWithUsageIfAsked(usage: string): void {
  const argv = process.argv.slice(2);
  if (!argv.includes("--help") && !argv.includes("-h")) return;
  process.stdout.write(`${usage.trim()}\n`);
  process.exit(0);
}
