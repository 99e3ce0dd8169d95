// Several single processes behind the same ports (`--processes 2`,
// services/lib/workers.ts): both serve, and one that dies is replaced while
// the other keeps answering.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Mesh } from "../../services/lib/launch.js";
import { eventually } from "../support/eventually.js";
import { gatewayApi } from "./support/api.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
let mesh: Mesh;

beforeAll(async () => {
  system = await startSystem({ processes: 2, router: false });
  mesh = system.mesh;
});

afterAll(async () => {
  await system?.stop();
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("--processes 2", () => {
  const { ok, signUp } = gatewayApi(() => mesh.gatewayUrl, "w");

  it("runs two workers on the same ports, and replaces one that dies while the other serves", async () => {
    const workers = mesh.workerPids ?? [];
    expect(workers).toHaveLength(2);
    for (const pid of workers) expect(alive(pid)).toBe(true);
    const author = await signUp();
    await ok("chirp.tweet.v1.TweetService/PostTweet", { text: "from one of two" }, author.token);

    process.kill(workers[0]!, "SIGKILL");
    // The primary starts a replacement: two workers again (its children), the killed one gone.
    await eventually("a replacement worker", () => {
      const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(mesh.gatewayPid)], { encoding: "utf8" })
        .split("\n")
        .map((l) => Number(l.trim()))
        .filter((pid) => pid > 0 && alive(pid));
      return children.length === 2 && !children.includes(workers[0]!);
    });
    // Every call is answered, each on a fresh connection the primary hands to a live worker.
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${mesh.gatewayUrl}/chirp.user.v1.UserService/GetUser`, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "close" },
        body: JSON.stringify({ userId: String(author.id) }),
      });
      expect(res.status).toBe(200);
    }
  });
});
