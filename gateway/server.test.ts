import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserSchema } from "../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../gen/chirp/user/v1/user_service_pb.js";
import { generateTokenKeys } from "../lib/auth/token.js";
import { createLogger } from "../lib/logger.js";
import { createMetrics } from "../lib/metrics.js";
import { GrpcServer } from "../lib/rpc/grpc-server.js";
import { loadGatewayConfig } from "./config.js";
import { startGateway, type Gateway } from "./server.js";
import { generateMeshSecret } from "../lib/auth/assertion.js";
const TEST_MESH_SECRET = generateMeshSecret();

// The gateway in-process, in front of a grpc-js backend in-process.
describe("gateway under concurrent calls", () => {
  const backend = new GrpcServer({ log: createLogger("user", "silent"), metrics: createMetrics("user") });
  let gateway: Gateway;

  beforeAll(async () => {
    backend.register(UserService, {
      async getUser() {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return { user: create(UserSchema, { id: 1n, handle: "alice" }) };
      },
    });
    const port = await backend.listen("127.0.0.1", 0);
    const config = loadGatewayConfig({
      CHIRP_GATEWAY_PORT: "0",
      CHIRP_USER_ADDR: `127.0.0.1:${port}`,
      CHIRP_TOKEN_PUBLIC_KEYS: generateTokenKeys().publicKey,
      CHIRP_MESH_SECRET: TEST_MESH_SECRET,
    });
    gateway = await startGateway(config, createLogger("gateway", "silent"), createMetrics("gateway"));
  });

  afterAll(async () => {
    await gateway?.close();
    await backend.close(100);
  });

  it("forwards 50 calls at once without piling listeners onto one signal", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on("warning", onWarning);
    try {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () =>
          fetch(`http://127.0.0.1:${gateway.port}/chirp.user.v1.UserService/GetUser`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ handle: "alice" }),
          }).then((r) => r.status),
        ),
      );
      expect(answers.every((s) => s === 200)).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.map((w) => w.name)).not.toContain("MaxListenersExceededWarning");
  });
});
