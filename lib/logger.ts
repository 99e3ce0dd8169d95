import { pino, type Logger } from "pino";

export type { Logger };

/**
 * One JSON logger per process. Every line carries the service name so that the
 * interleaved output of `npm start` stays attributable.
 */
export function createLogger(service: string, level: string = "info"): Logger {
  return pino({
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Never let credentials reach a log line, whatever object gets logged.
    redact: {
      paths: ["password", "token", "*.password", "*.token", "authorization", "*.authorization"],
      censor: "[redacted]",
    },
  });
}
