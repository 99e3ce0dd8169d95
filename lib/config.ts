/**
 * Environment reading, done once at startup. Every problem is collected and
 * reported together, so a misconfigured process fails fast with the whole list
 * instead of one complaint per restart. No other module reads process.env.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * One read of a setting, as its loader made it: what the configuration
 * reference (docs/configuration.md, scripts/config-reference.ts) is built
 * from. "raw" is a lookup that bypassed EnvReader (env[name]): its default,
 * if any, is not known here, so such reads must have none.
 */
export type SettingRead =
  | { readonly name: string; readonly kind: "string"; readonly fallback: string | undefined }
  | { readonly name: string; readonly kind: "optional" }
  | { readonly name: string; readonly kind: "port"; readonly fallback: number }
  | { readonly name: string; readonly kind: "int"; readonly fallback: number; readonly min: number; readonly max: number }
  | { readonly name: string; readonly kind: "oneOf"; readonly fallback: string; readonly allowed: readonly string[] }
  | { readonly name: string; readonly kind: "raw" };

const RECORDER = Symbol("chirp.config.recorder");

/**
 * An environment that reports what is read from it: every EnvReader made
 * over it (inside any loader, unchanged) reports each read with its fallback
 * and bounds, and any other lookup reports as "raw". Not for running
 * processes: the reference generator alone uses it.
 */
export function recordReads(env: Env): { readonly env: Env; readonly reads: SettingRead[] } {
  const reads: SettingRead[] = [];
  const record = (read: SettingRead): void => void reads.push(read);
  const recording = new Proxy(env, {
    get(target, key) {
      if (key === RECORDER) return record;
      if (typeof key === "string") reads.push({ name: key, kind: "raw" });
      return Reflect.get(target, key);
    },
  });
  return { env: recording, reads };
}

export class EnvReader {
  private readonly problems: string[] = [];
  private readonly record: ((read: SettingRead) => void) | undefined;

  constructor(private readonly env: Env) {
    this.record = (env as { readonly [RECORDER]?: (read: SettingRead) => void })[RECORDER];
  }

  string(name: string, fallback?: string): string {
    this.record?.({ name, kind: "string", fallback });
    const value = this.env[name];
    if (value !== undefined && value !== "") return value;
    if (fallback !== undefined) return fallback;
    this.problems.push(`${name} is required`);
    return "";
  }

  optional(name: string): string | undefined {
    this.record?.({ name, kind: "optional" });
    const value = this.env[name];
    return value === undefined || value === "" ? undefined : value;
  }

  port(name: string, fallback: number): number {
    this.record?.({ name, kind: "port", fallback });
    const raw = this.env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 65535) {
      this.problems.push(`${name} must be a port number 0-65535, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return n;
  }

  int(name: string, fallback: number, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
    this.record?.({ name, kind: "int", fallback, min, max });
    const raw = this.env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return n;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    this.record?.({ name, kind: "oneOf", fallback, allowed });
    const raw = this.env[name];
    if (raw === undefined || raw === "") return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    this.problems.push(`${name} must be one of ${allowed.join(", ")}, got ${JSON.stringify(raw)}`);
    return fallback;
  }

  /** Throws one ConfigError listing everything wrong. */
  /** Throws every problem found: the reads' first, then `more` (checks across settings). */
  done(more: readonly string[] = []): void {
    const all = [...this.problems, ...more];
    if (all.length > 0) throw new ConfigError(all);
  }
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
