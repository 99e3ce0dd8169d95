// What tracing reads from the environment, once. The standard OpenTelemetry
// variables keep their standard meaning, so a collector set up for any other
// OpenTelemetry program works with Chirp unchanged:
//
//   CHIRP_TRACING                        auto (default) | on | off
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   full URL of the traces endpoint (used as is)
//   OTEL_EXPORTER_OTLP_ENDPOINT          base URL; "/v1/traces" is appended
//   OTEL_SERVICE_NAME                    default chirp-<process>
//   OTEL_RESOURCE_ATTRIBUTES             key=value,... added to every span's resource
//   OTEL_TRACES_SAMPLER, _SAMPLER_ARG    default parentbased_always_on
//   OTEL_SDK_DISABLED                    true: off, whatever else is set
//
// "auto" turns tracing on when an OTLP endpoint is set; "on" without one
// exports to http://localhost:4318/v1/traces, a collector on this machine.
// The exporter itself also reads OTEL_EXPORTER_OTLP_(TRACES_)HEADERS,
// _TIMEOUT and _COMPRESSION, and the batch processor OTEL_BSP_*.
import { ConfigError, EnvReader, type Env } from "../config.js";

export const TRACES_SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type TracesSampler = (typeof TRACES_SAMPLERS)[number];

export interface TracingConfig {
  /**
   * False: no provider, no exporter, no spans; every helper in tracing.ts passes straight through.
   *
   * CHIRP_TRACING: `auto` traces when an OTLP endpoint is set; `on` traces,
   * exporting to http://localhost:4318/v1/traces unless an endpoint is set;
   * `off` never traces (docs/operations.md, Tracing).
   *
   * OTEL_SDK_DISABLED: `true` turns tracing off, whatever else is set.
   */
  readonly enabled: boolean;
  /**
   * The OTLP/HTTP traces URL spans are posted to (JSON encoding).
   *
   * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the collector's traces URL, used as
   * is; wins over OTEL_EXPORTER_OTLP_ENDPOINT.
   *
   * OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL; `/v1/traces` is
   * appended. The exporter itself also reads the standard
   * OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and _COMPRESSION, and the batch
   * span processor OTEL_BSP_*.
   */
  readonly endpoint: string;
  /** OTEL_SERVICE_NAME: the service name on the process's spans: `chirp-all`, or in the mesh `chirp-gateway`, `chirp-tweet`, ... */
  readonly serviceName: string;
  /**
   * OTEL_RESOURCE_ATTRIBUTES: `key=value,...` (values percent-encoded) added
   * to every span's resource, e.g. `deployment.environment.name=prod`.
   */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  /**
   * OTEL_TRACES_SAMPLER: which requests are traced. Keep the services
   * `parentbased_*`: the gateway decides, every hop follows.
   */
  readonly sampler: TracesSampler;
  /** OTEL_TRACES_SAMPLER_ARG: the ratio of the traceidratio samplers, 0 to 1 (`0.01` keeps 1% of requests, whole); default 1. */
  readonly samplerRatio: number;
}

export const DEFAULT_OTLP_TRACES_ENDPOINT = "http://localhost:4318/v1/traces";

/** `process` names the process (user, tweet, gateway, ...): the default service name is chirp-<process>. */
export function loadTracingConfig(env: Env, process: string): TracingConfig {
  const read = new EnvReader(env);
  const mode = read.oneOf("CHIRP_TRACING", ["auto", "on", "off"] as const, "auto");
  const tracesEndpoint = read.optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const baseEndpoint = read.optional("OTEL_EXPORTER_OTLP_ENDPOINT");
  const sdkDisabled = read.oneOf("OTEL_SDK_DISABLED", ["true", "false"] as const, "false") === "true";
  const sampler = read.oneOf("OTEL_TRACES_SAMPLER", TRACES_SAMPLERS, "parentbased_always_on");
  const ratioRaw = read.optional("OTEL_TRACES_SAMPLER_ARG");
  const problems: string[] = [];
  let samplerRatio = 1;
  if (ratioRaw !== undefined && sampler.endsWith("traceidratio")) {
    samplerRatio = Number(ratioRaw);
    if (!Number.isFinite(samplerRatio) || samplerRatio < 0 || samplerRatio > 1) {
      problems.push(`OTEL_TRACES_SAMPLER_ARG must be a ratio in [0, 1], got ${JSON.stringify(ratioRaw)}`);
      samplerRatio = 1;
    }
  }
  const endpoint = tracesEndpoint ?? (baseEndpoint === undefined ? DEFAULT_OTLP_TRACES_ENDPOINT : joinPath(baseEndpoint, "v1/traces"));
  for (const [name, url] of [
    ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", tracesEndpoint],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", baseEndpoint],
  ] as const) {
    if (url !== undefined && !/^https?:\/\/[^/]/.test(url)) problems.push(`${name} must be an http(s) URL, got ${JSON.stringify(url)}`);
  }
  const resourceAttributes = parseResourceAttributes(read.optional("OTEL_RESOURCE_ATTRIBUTES") ?? "", problems);
  const config: TracingConfig = {
    enabled: !sdkDisabled && (mode === "on" || (mode === "auto" && (tracesEndpoint !== undefined || baseEndpoint !== undefined))),
    endpoint,
    serviceName: read.string("OTEL_SERVICE_NAME", `chirp-${process}`),
    resourceAttributes,
    sampler,
    samplerRatio,
  };
  let readerProblems: readonly string[] = [];
  try {
    read.done();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    readerProblems = err.problems;
  }
  if (readerProblems.length + problems.length > 0) throw new ConfigError([...readerProblems, ...problems]);
  return config;
}

/** The OTLP spec's rule: the signal path is appended to the base URL, with exactly one slash between. */
function joinPath(base: string, path: string): string {
  return base.endsWith("/") ? `${base}${path}` : `${base}/${path}`;
}

/** `key1=value1,key2=value2`, values percent-encoded (the OpenTelemetry resource SDK's format). */
export function parseResourceAttributes(raw: string, problems: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of raw.split(",")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    const key = eq < 0 ? "" : pair.slice(0, eq).trim();
    if (key === "") {
      problems.push(`OTEL_RESOURCE_ATTRIBUTES: ${JSON.stringify(pair)} is not key=value`);
      continue;
    }
    try {
      out[key] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      problems.push(`OTEL_RESOURCE_ATTRIBUTES: the value of ${key} is not percent-encoded properly`);
    }
  }
  return out;
}
