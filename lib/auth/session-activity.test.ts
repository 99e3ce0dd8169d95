import { describe, expect, it } from "vitest";
import type { EventBus } from "../events/bus.js";
import { REPORT_EVERY_MS, SESSION_ACTIVE_SUBJECT, sessionActivityReporter } from "./session-activity.js";

describe("sessionActivityReporter", () => {
  it("publishes a session's first use, then at most one report per interval, and nothing while NATS is away", () => {
    const sent: string[] = [];
    let up = true;
    const bus = { current: () => (up ? { nc: { publish: (subject: string, data: string) => sent.push(`${subject} ${data}`) } } : undefined) } as unknown as EventBus;
    let now = 1_000_000;
    const report = sessionActivityReporter(bus, () => now);
    report("1", "10");
    report("1", "10");
    report("2", "20");
    now += REPORT_EVERY_MS - 1;
    report("1", "10");
    now += 1;
    up = false;
    report("1", "10"); // not sent, and not remembered as sent
    up = true;
    report("1", "10");
    expect(sent).toEqual([
      `${SESSION_ACTIVE_SUBJECT} 1 10 1000000`,
      `${SESSION_ACTIVE_SUBJECT} 2 20 1000000`,
      `${SESSION_ACTIVE_SUBJECT} 1 10 ${1_000_000 + REPORT_EVERY_MS}`,
    ]);
  });
});
