import { describe, expect, it } from "vitest";
import { cpuBetween, cpuSeconds, cpuTimes } from "./machine.js";

describe("per-process CPU from /proc", () => {
  it("gives a process's CPU per request, its share of a core and the kernel's share of it", () => {
    const before = { chirp: { user: 10, system: 1 }, redis: { user: 2, system: 2 } };
    const after = { chirp: { user: 18.1, system: 1.9 }, redis: { user: 2.5, system: 2.5 } };
    // 1,000 requests over 10 s: chirp used 8.1 s in user space and 0.9 s in the kernel.
    expect(cpuBetween(before, after, 1000, 10)).toEqual({
      chirp: { cpuMsPerRequest: 9, percentOfCore: 90, kernelPercent: 10 },
      redis: { cpuMsPerRequest: 1, percentOfCore: 10, kernelPercent: 50 },
    });
  });

  it("counts a process missing from the first snapshot, or idle, as no CPU", () => {
    expect(cpuBetween({}, { late: { user: 5, system: 1 } }, 10, 1)).toEqual({ late: { cpuMsPerRequest: 0, percentOfCore: 0, kernelPercent: 0 } });
    expect(cpuBetween({ idle: { user: 1, system: 1 } }, { idle: { user: 1, system: 1 } }, 0, 1)).toEqual({ idle: { cpuMsPerRequest: 0, percentOfCore: 0, kernelPercent: 0 } });
  });

  it.runIf(process.platform === "linux")("reads this process's user and system time, which add up to cpuSeconds", () => {
    const t = cpuTimes(process.pid)!;
    expect(t.user).toBeGreaterThan(0);
    expect(t.system).toBeGreaterThanOrEqual(0);
    expect(cpuSeconds(process.pid)).toBeGreaterThanOrEqual(t.user + t.system);
    expect(cpuTimes(2 ** 22 + 1)).toBeUndefined();
  });
});
