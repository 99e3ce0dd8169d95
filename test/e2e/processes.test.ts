// Several single processes behind the same ports (`--processes 2`,
// lib/workers.ts): both serve, and one that dies is replaced while
// the other keeps answering.
import { execFileSync } from "node:child_process";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Mesh } from "../../devcluster/launch.js";
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

/**
 * One request on a connection of its own (no keep-alive pool): the primary hands each new
 * connection to the next worker, and no socket of a worker killed meanwhile is reused.
 */
function onFreshConnection(url: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: body === undefined ? "GET" : "POST", agent: false, headers: { "content-type": "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

describe("--processes 2", () => {
  const { ok, signUp } = gatewayApi(() => mesh.gatewayUrl, "w");

  /** The gateway's GetUser calls counted in one scrape of /metrics (whichever worker answers it). */
  const getUserCalls = async (): Promise<number> => {
    const { text } = await onFreshConnection(mesh.gatewayMetricsUrl);
    let sum = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith("chirp_rpc_server_duration_seconds_count{") && line.includes('method="GetUser"') && line.includes('component="gateway"')) sum += Number(line.split(" ").at(-1));
    }
    return sum;
  };

  it("answers /metrics for both workers, whichever takes the scrape", async () => {
    const author = await signUp();
    const before = await getUserCalls();
    // Fresh connections: the primary hands them to both workers in turn.
    for (let i = 0; i < 10; i++) {
      expect((await onFreshConnection(`${mesh.gatewayUrl}/chirp.user.v1.UserService/GetUser`, { userId: String(author.id) })).status).toBe(200);
    }
    // Every scrape, whichever worker answers it, counts all ten.
    for (let i = 0; i < 4; i++) expect((await getUserCalls()) - before).toBe(10);
  });

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
    // Every call is answered, each on a fresh connection the primary hands to a live worker
    // (fetch's pool could reuse a socket the killed worker held: "other side closed").
    for (let i = 0; i < 10; i++) {
      expect((await onFreshConnection(`${mesh.gatewayUrl}/chirp.user.v1.UserService/GetUser`, { userId: String(author.id) })).status).toBe(200);
    }
  });
});
