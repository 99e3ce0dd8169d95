#!/usr/bin/env node
// The `chirp` command (package.json "bin"). It loads the TypeScript CLI through
// tsx's API, in this process, so there is no build step and no second process;
// argv passes through and the command's result becomes the exit code.
import { tsImport } from "tsx/esm/api";

const { main } = await tsImport("../scripts/cli/main.ts", import.meta.url);
process.exitCode = await main(process.argv.slice(2));
