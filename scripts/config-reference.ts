// The configuration reference (docs/configuration.md), made from the config
// loaders themselves so that it cannot drift from them. Each kind of process
// (READERS) runs its loaders over an environment that records every read
// (lib/config.ts, recordReads): the name, the default and the bounds. What a
// setting means is the doc comment in the loader's source that starts with
// its name, `/** CHIRP_X: meaning */`, or a paragraph of a longer comment that
// does; `<PART>` in a name stands for a family (CHIRP_<SERVICE>_ADDR). A
// setting read with no description, a description no loader reads, and a
// docs/configuration.md other than the one rendered here all fail
// scripts/config-reference.test.ts. `npm run docs:config` rewrites the file.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadGatewayConfig } from "../gateway/config.js";
import { generateMeshSecret } from "../lib/auth/assertion.js";
import { generateTokenKeys } from "../lib/auth/token.js";
import { generateVapidKey } from "../lib/push/vapid.js";
import { recordReads, type Env, type SettingRead } from "../lib/config.js";
import { loadBusConfig, loadRelayConfig } from "../lib/events/config.js";
import { SERVICE_NAMES, type ServiceName } from "../lib/mesh.js";
import { loadRedisConfig } from "../lib/redis.js";
import { loadProcessConfig } from "../lib/service-main.js";
import { loadDbConfig } from "../lib/shard/config.js";
import { loadTracingConfig } from "../lib/tracing/config.js";
import { loadUserCacheConfig } from "../lib/user-cache.js";
import { loadTweetCacheConfig } from "../lib/tweet-cache.js";
import { processesArgument } from "../lib/workers.js";
import { loadGraphConfig } from "../services/graph/config.js";
import { loadMediaConfig } from "../services/media/config.js";
import { loadNotificationConfig } from "../services/notification/config.js";
import { loadSearchConfig } from "../services/search/config.js";
import { targetArgument } from "../services/targets.js";
import { loadTimelineConfig } from "../services/timeline/config.js";
import { loadTopologyConfig } from "../services/topology/config.js";
import { loadTweetConfig } from "../services/tweet/config.js";
import { loadUserConfig } from "../services/user/config.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DOC_PATH = join(REPO_ROOT, "docs", "configuration.md");

/** Ends the hand-written part of docs/configuration.md; everything after it is rendered. */
export const MARKER =
  "<!-- Generated below by `npm run docs:config` (scripts/config-docs.ts) from the config loaders and their doc comments: edit those, not this. -->";

const DEFAULT_INTRO = `# Configuration

Every Chirp process reads its environment once at start and reports every problem at once.

${MARKER}
`;

/** A kind of process, as the "read by" column names it, and the loaders it runs at start. */
interface Reader {
  readonly name: string;
  readonly load: (env: Env) => void;
  /** What must be set for every loader to succeed and take every branch that reads more (S3, a replication account). */
  readonly env?: Env;
}

const SERVICE_SET = new Set<string>(SERVICE_NAMES);

function readers(): Reader[] {
  const keys = generateTokenKeys();
  // Every process that hosts a service needs its key; a gateway, the secret (decision 22).
  const mesh = { CHIRP_MESH_SECRET: generateMeshSecret() };
  const mysql = { MYSQL_URL: "mysql://chirp:chirp@127.0.0.1:3306" };
  // A process of one service reads its own ports (the mesh), then its own settings.
  const service = (name: ServiceName, load: (env: Env) => unknown, env?: Env): Reader => ({
    name,
    env: { ...mesh, ...env },
    load: (e) => {
      loadProcessConfig([name], e);
      load(e);
    },
  });
  return [
    {
      name: "main",
      load: (env) => {
        targetArgument([], env);
        processesArgument([], env);
      },
    },
    {
      // What every process of services reads (service-main.ts, service-context.ts), here as one of several services.
      name: "services",
      env: { ...mysql, ...mesh },
      load: (env) => {
        loadProcessConfig(SERVICE_NAMES, env);
        loadTracingConfig(env, "<process>");
        loadDbConfig(env);
        loadBusConfig(env);
        loadRedisConfig(env);
        loadUserCacheConfig(env);
        loadTweetCacheConfig(env);
      },
    },
    service("user", loadUserConfig, { CHIRP_TOKEN_PRIVATE_KEY: keys.privateKey }),
    service("graph", loadGraphConfig),
    service("tweet", (env) => {
      loadTweetConfig(env);
      loadRelayConfig(env);
    }),
    service("timeline", loadTimelineConfig),
    service("search", loadSearchConfig),
    service("media", loadMediaConfig, {
      CHIRP_MEDIA_S3_BUCKET: "chirp-media",
      CHIRP_MEDIA_S3_ACCESS_KEY_ID: "id",
      CHIRP_MEDIA_S3_SECRET_ACCESS_KEY: "secret",
    }),
    service("notification", loadNotificationConfig, { CHIRP_PUSH_VAPID_PRIVATE_KEY: generateVapidKey() }),
    {
      name: "gateway",
      env: { CHIRP_TOKEN_PUBLIC_KEYS: keys.publicKey, ...mesh },
      load: (env) => {
        loadGatewayConfig(env);
        loadTracingConfig(env, "<process>");
      },
    },
    {
      name: "topology",
      env: { ...mysql, NATS_URL: "nats://127.0.0.1:4222", CHIRP_TOPOLOGY_REPL_USER: "repl" },
      load: (env) => void loadTopologyConfig(env),
    },
  ];
}

/** The sections of the reference, each made of the settings described in its files, in their order there. */
const SECTIONS: ReadonlyArray<{ readonly title: string; readonly files: readonly string[]; readonly intro?: string }> = [
  {
    title: "Infrastructure",
    files: ["lib/shard/infra-env.ts"],
    intro:
      "Where the servers are. `npm start` starts local ones for whatever is not set (devcluster/README.md); `scripts/migrate.ts` reads the MySQL URLs too.",
  },
  {
    title: "Processes",
    files: ["services/targets.ts", "lib/workers.ts", "lib/service-main.ts", "lib/service-config.ts"],
    intro: "What a process of `services/main.ts` hosts, where it listens, and how it logs and stops (README.md, One process or the mesh).",
  },
  { title: "Databases", files: ["lib/shard/config.ts"], intro: "The shard layout and the shard router's limits, in every service process." },
  {
    title: "Redis",
    files: ["lib/redis.ts", "lib/user-cache.ts", "lib/tweet-cache.ts"],
    intro: "Redis commands, and the caches every service process builds: profiles, tweets and viewers' like states.",
  },
  { title: "Events", files: ["lib/events/config.ts"], intro: "The NATS JetStream event stream, and the outbox relay that publishes to it." },
  { title: "Tracing", files: ["lib/tracing/config.ts"], intro: "OpenTelemetry traces (docs/operations.md, Tracing). The standard variables keep their standard meaning." },
  { title: "Gateway", files: ["gateway/config.ts"] },
  { title: "User service", files: ["services/user/config.ts"] },
  { title: "Graph service", files: ["services/graph/config.ts"] },
  { title: "Tweet service", files: ["services/tweet/config.ts"] },
  { title: "Timeline service", files: ["services/timeline/config.ts"] },
  { title: "Search service", files: ["services/search/config.ts"] },
  { title: "Media service", files: ["services/media/config.ts"] },
  { title: "Notification service", files: ["services/notification/config.ts"] },
  {
    title: "Topology manager",
    files: ["services/topology/config.ts"],
    intro: "Always its own process, with the MySQL admin account (services/topology/README.md).",
  },
];

/** Every setting read, in the order first read, with each reader's reads of it (typed ones when there are any). */
export function collectReads(): { readonly settings: Map<string, Map<string, SettingRead[]>>; readonly problems: string[] } {
  const settings = new Map<string, Map<string, SettingRead[]>>();
  const problems: string[] = [];
  for (const reader of readers()) {
    const { env, reads } = recordReads({ ...reader.env });
    try {
      reader.load(env);
    } catch (err) {
      problems.push(`${reader.name}: its loaders failed over the generator's environment (give them what they need in readers()): ${(err as Error).message}`);
    }
    const byName = new Map<string, SettingRead[]>();
    for (const read of reads) byName.set(read.name, [...(byName.get(read.name) ?? []), read]);
    for (const [name, all] of byName) {
      // EnvReader's own lookup shows as a raw read too; a typed read says more.
      const typed = all.filter((r) => r.kind !== "raw");
      const distinct = new Map((typed.length > 0 ? typed : all.slice(0, 1)).map((r) => [JSON.stringify(r), r]));
      const entry = settings.get(name) ?? new Map<string, SettingRead[]>();
      entry.set(reader.name, [...distinct.values()]);
      settings.set(name, entry);
    }
  }
  return { settings, problems };
}

export interface Description {
  /** As written: a setting's name, or a family's (`CHIRP_<SERVICE>_ADDR`). */
  readonly name: string;
  readonly text: string;
  /** Repository-relative. */
  readonly file: string;
  /** Set for a family. */
  readonly pattern: RegExp | undefined;
}

const NAME = String.raw`(?:[A-Z][A-Z0-9]*|<[A-Z|]+>)(?:_(?:[A-Z0-9]+|<[A-Z|]+>))+`;
const DESCRIPTION = new RegExp(String.raw`^(${NAME}): +(\S[\s\S]*)$`);

/** The descriptions in one source file: doc-comment paragraphs that start with `NAME: `. */
export function parseDescriptions(source: string, file: string): Description[] {
  const out: Description[] = [];
  for (const comment of source.matchAll(/\/\*\*([\s\S]*?)\*\//g)) {
    const lines = comment[1]!.split("\n").map((line) => line.replace(/^\s*\*?\s?/, "").trimEnd());
    const paragraphs = lines.join("\n").split(/\n\s*\n/);
    for (const paragraph of paragraphs) {
      const m = DESCRIPTION.exec(paragraph.trim());
      if (m === null) continue;
      const name = m[1]!;
      out.push({ name, text: m[2]!.replace(/\s+/g, " ").trim(), file, pattern: name.includes("<") ? familyPattern(name) : undefined });
    }
  }
  return out;
}

/** `CHIRP_<SERVICE>_ADDR` -> /^CHIRP_[A-Z0-9]+(?:_[A-Z0-9]+)*_ADDR$/; `<USER|IP>` is one of its words. */
function familyPattern(name: string): RegExp {
  const source = name.replace(/<([A-Z|]+)>|[^<]+/g, (part, inner: string | undefined) =>
    inner === undefined ? part : inner.includes("|") ? `(?:${inner})` : "[A-Z0-9]+(?:_[A-Z0-9]+)*",
  );
  return new RegExp(`^${source}$`);
}

/** Which description a setting's name takes: its own, else the one family it belongs to. */
function describe(name: string, descriptions: readonly Description[]): Description[] {
  const own = descriptions.filter((d) => d.pattern === undefined && d.name === name);
  return own.length > 0 ? own : descriptions.filter((d) => d.pattern?.test(name) === true);
}

/**
 * Which description each setting read takes, and what is wrong: a setting
 * read with none, one that two families claim, a name described twice, a
 * description that names nothing read. `settings` maps each name to its readers.
 */
export function matchDescriptions(
  settings: ReadonlyMap<string, ReadonlyMap<string, unknown>>,
  descriptions: readonly Description[],
): { readonly placed: Map<string, Description>; readonly problems: string[] } {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const d of descriptions) {
    const where = seen.get(d.name);
    if (where !== undefined) problems.push(`${d.name} is described twice (${where} and ${d.file}): keep one`);
    seen.set(d.name, d.file);
  }
  const placed = new Map<string, Description>();
  for (const [name, byReader] of settings) {
    const found = describe(name, descriptions);
    const who = [...byReader.keys()].join(", ");
    if (found.length === 0) problems.push(`${name} is read (${who}) but described nowhere: add /** ${name}: meaning */ to its loader's source`);
    else if (found.length > 1) problems.push(`${name} matches several descriptions (${found.map((d) => `${d.name} in ${d.file}`).join(", ")})`);
    else placed.set(name, found[0]!);
  }
  const used = new Set(placed.values());
  for (const d of descriptions) {
    if (!used.has(d)) problems.push(`${d.name} is described in ${d.file} but no loader reads it`);
  }
  return { placed, problems };
}

export interface Reference {
  /** The whole of docs/configuration.md. */
  readonly text: string;
  /** How many settings it lists. */
  readonly count: number;
  /** Settings without a description, descriptions nothing reads, loaders that failed: the reference is wrong while any is left. */
  readonly problems: readonly string[];
}

/** Renders the reference under `intro` (the hand-written head of the file, up to and including MARKER). */
export function renderReference(intro: string = DEFAULT_INTRO): Reference {
  const { settings, problems } = collectReads();
  const sections = SECTIONS.map((s) => ({
    ...s,
    descriptions: s.files.flatMap((file) => parseDescriptions(readFileSync(join(REPO_ROOT, file), "utf8"), file)),
  }));
  const all = sections.flatMap((s) => s.descriptions);

  const matched = matchDescriptions(settings, all);
  problems.push(...matched.problems);
  const placed = matched.placed;

  const out: string[] = [intro.trimEnd(), "", READ_BY_LEGEND];
  let count = 0;
  for (const section of sections) {
    const rows: string[] = [];
    for (const d of section.descriptions) {
      // A family's first member carries the meaning; the rest point at it.
      let first: string | undefined;
      for (const [name, described] of placed) {
        if (described !== d) continue;
        rows.push(row(name, settings.get(name)!, first === undefined ? d.text : `as ${first}.`));
        first ??= name;
        count++;
      }
    }
    if (rows.length === 0) continue;
    out.push("", `## ${section.title}`, "");
    const sources = section.files.map((f) => `[${f}](../${f})`).join(", ");
    out.push(`${section.intro === undefined ? "" : `${section.intro} `}Source: ${sources}.`, "");
    out.push("| setting | default | allowed | read by | meaning |", "|---|---|---|---|---|", ...rows);
  }
  return { text: `${out.join("\n")}\n`, count, problems };
}

const READ_BY_LEGEND = [
  "Read by: `services`: every process hosting services (whichever they are); `user`, `graph`, `tweet`, `timeline`,",
  "`search`, `media`: the process of that service, or any process hosting it; `gateway`: the gateway; `topology`: the",
  "topology manager; `main`: `services/main.ts` before it starts anything. A default or range that differs between",
  "readers is given for each.",
].join("\n");

const READER_ORDER = ["main", "services", ...SERVICE_NAMES, "gateway", "topology"];

function row(name: string, byReader: Map<string, SettingRead[]>, meaning: string): string {
  const cell = (show: (read: SettingRead) => string): string => {
    const groups = new Map<string, string[]>();
    for (const [reader, reads] of byReader) for (const read of reads) groups.set(show(read), [...(groups.get(show(read)) ?? []), reader]);
    if (groups.size === 1) return [...groups.keys()][0]!;
    return [...groups].map(([value, who]) => `${value === "" ? "any" : value} (${readersText(who)})`).join("; ");
  };
  const cells = [code(name), cell(defaultOf), cell(allowedOf), readersText([...byReader.keys()]), markdown(capitalise(meaning))];
  return `| ${cells.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`;
}

/** `services` stands for every service; a service named alone is one that reads more than the rest. */
function readersText(names: readonly string[]): string {
  const unique = [...new Set(names)];
  const shown = unique.includes("services") ? unique.filter((n) => !SERVICE_SET.has(n)) : unique;
  return shown.sort((a, b) => READER_ORDER.indexOf(a) - READER_ORDER.indexOf(b)).join(", ");
}

function defaultOf(read: SettingRead): string {
  switch (read.kind) {
    case "string":
      return read.fallback === undefined ? "required" : code(read.fallback.startsWith(`${REPO_ROOT}/`) ? `<repo>/${read.fallback.slice(REPO_ROOT.length + 1)}` : read.fallback);
    case "optional":
    case "raw":
      return "none";
    case "port":
      return code(String(read.fallback));
    case "int":
      return `${code(String(read.fallback))}${inUnits(read.name, read.fallback)}`;
    case "oneOf":
      return code(read.fallback);
  }
}

function allowedOf(read: SettingRead): string {
  switch (read.kind) {
    case "port":
      return "0 to 65535";
    case "int":
      if (read.max === Number.MAX_SAFE_INTEGER) return `${read.min} or more`;
      if (read.min === Number.MIN_SAFE_INTEGER) return `at most ${read.max}`;
      return `${read.min} to ${read.max}`;
    case "oneOf":
      return read.allowed.map(code).join(", ");
    default:
      return "";
  }
}

const DURATIONS: ReadonlyArray<readonly [number, string]> = [
  [86_400_000, "d"],
  [3_600_000, "h"],
  [60_000, "min"],
  [1000, "s"],
];
const SIZES: ReadonlyArray<readonly [number, string]> = [
  [1024 ** 3, "GiB"],
  [1024 ** 2, "MiB"],
  [1024, "KiB"],
];

/** A default in the units people think in: `86400000` (1 d), `16777216` (16 MiB). */
function inUnits(name: string, n: number): string {
  let value = 0;
  let units: ReadonlyArray<readonly [number, string]> = [];
  if (name.endsWith("_MS")) [value, units] = [n, DURATIONS];
  else if (name.endsWith("_SECONDS")) [value, units] = [n * 1000, DURATIONS];
  else if (name.endsWith("_BYTES") || name.endsWith("_MSG_SIZE")) [value, units] = [n, SIZES];
  else if (name.endsWith("_KIB")) [value, units] = [n * 1024, SIZES];
  if (value <= 0) return "";
  const unit = units.find(([size]) => value % size === 0);
  return unit === undefined ? "" : ` (${value / unit[0]} ${unit[1]})`;
}

function code(text: string): string {
  return text === "" ? '`""`' : `\`${text}\``;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

const CODE_SPAN = /(`[^`]*`)/;
const SETTING_NAME = /(?<!\w)(?:[A-Z][A-Z0-9]*|<[A-Z|]+>)?(?:_(?:[A-Z0-9]+|<[A-Z|]+>|\*))+/g;

/** Setting names (and `_SUFFIX` shorthands) in code spans; outside them, `<` escaped so that `<process>` is not taken for HTML. */
function markdown(text: string): string {
  const outsideCode = (s: string, f: (part: string) => string): string =>
    s
      .split(CODE_SPAN)
      .map((part, i) => (i % 2 === 1 ? part : f(part)))
      .join("");
  return outsideCode(
    outsideCode(text, (part) => part.replace(SETTING_NAME, (m) => `\`${m}\``)),
    (part) => part.replace(/</g, "&lt;"),
  );
}

/** The hand-written head of an existing docs/configuration.md (through MARKER), or the default one. */
export function introOf(existing: string | undefined): string {
  if (existing === undefined) return DEFAULT_INTRO;
  const at = existing.indexOf(MARKER);
  return at < 0 ? DEFAULT_INTRO : existing.slice(0, at + MARKER.length);
}
