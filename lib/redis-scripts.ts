// Lua scripts as commands, defined once for every Pipeline rather than copied
// onto each.
//
// ioredis's defineCommand puts a script's two methods on the client and
// lists the script in `scriptsSet`, and every Pipeline it makes copies each
// listed script onto itself. With auto-pipelining it makes a Pipeline for
// every event-loop turn that sends commands, so with the 25 scripts Chirp
// defines each one cost 13 µs against 3 µs with none (a scratch loop of
// 100,000, Node 20) and became a dictionary-mode object: paid twice by every
// home read and about fifteen times by every post (a CPU profile of posts at
// 50/s: 3.5 % of the process's time in that copy). defineScript defines the
// command as ioredis does, then moves its methods to the Pipeline prototype
// and takes it off the list: the client and every Pipeline (auto or explicit)
// run it exactly as before (EVALSHA; EVAL on a connection's first use and
// after the server lost its scripts), and no Pipeline copies anything.
import { Pipeline, type Redis } from "ioredis";

export interface ScriptDefinition {
  readonly lua: string;
  /** When fixed; otherwise the first argument says how many keys follow, as EVAL's does. */
  readonly numberOfKeys?: number;
}

/** Every script defined in this process, by name: one name is one script, whichever client defined it. */
const defined = new Map<string, ScriptDefinition>();

export function defineScript(redis: Redis, name: string, definition: ScriptDefinition): void {
  const known = defined.get(name);
  if (known !== undefined && (known.lua !== definition.lua || known.numberOfKeys !== definition.numberOfKeys)) {
    throw new Error(`Redis script ${name} is already defined with another text`);
  }
  defined.set(name, definition);
  redis.defineCommand(name, { lua: definition.lua, ...(definition.numberOfKeys === undefined ? {} : { numberOfKeys: definition.numberOfKeys }) });
  const client = redis as unknown as Record<string, unknown> & { scriptsSet?: Record<string, unknown> };
  // The methods ioredis generated only read `this` (its options; whether it is a Pipeline), so one copy serves every Pipeline.
  const pipelines = Pipeline.prototype as unknown as Record<string, unknown>;
  for (const method of [name, `${name}Buffer`]) {
    if (typeof pipelines[method] !== "function" && typeof client[method] === "function") pipelines[method] = client[method];
  }
  if (client.scriptsSet !== undefined) delete client.scriptsSet[name];
}
