import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

function hasDockerCompose(): boolean {
  try {
    execFileSync("docker-compose", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

// No Docker engine runs on the development machines, so the file cannot be
// started here; it must at least parse. .ci/run installs docker-compose.
describe.skipIf(!hasDockerCompose())("docker-compose.yml", () => {
  it("is a valid compose file", async () => {
    const { stderr } = await run("docker-compose", ["config", "-q"]);
    expect(stderr).toBe("");
  });

  it("defines every service of the mesh, the gateway and the infrastructure", async () => {
    const { stdout } = await run("docker-compose", ["config", "--services"]);
    const services = stdout.trim().split("\n");
    for (const name of ["user", "graph", "tweet", "timeline", "search", "media", "gateway", "redis", "nats", "migrate", "keys", "topology", "rs0-a", "rs0-b", "rs1-a", "rs1-b"]) {
      expect(services).toContain(name);
    }
  });
});
