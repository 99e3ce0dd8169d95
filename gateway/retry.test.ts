// Round-robin over instances and the one retry rule of the mesh clients
// (lib/rpc/grpc-transport.ts): UNAVAILABLE is tried again, on the
// next instance; nothing else is. Real grpc-js servers on loopback, the real
// gateway in front of them for the last test.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { UserSchema } from "../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../gen/chirp/user/v1/user_service_pb.js";
import { generateTokenKeys } from "../lib/auth/token.js";
import { createLogger } from "../lib/logger.js";
import { createMetrics } from "../lib/metrics.js";
import { GrpcServer } from "../lib/rpc/grpc-server.js";
import { MESH_RETRY_ATTEMPTS, createGrpcTransport } from "../lib/rpc/grpc-transport.js";
import { loadGatewayConfig } from "./config.js";
import { startGateway, type Gateway } from "./server.js";
import { generateMeshSecret } from "../lib/auth/assertion.js";
const TEST_MESH_SECRET = generateMeshSecret();

interface Instance {
  readonly server: GrpcServer;
  readonly port: number;
  calls: number;
}

const open: Array<{ close(): Promise<void> | void }> = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close();
});

/** A UserService instance whose GetUser answers with `answer` (an error code, or OK). */
async function instance(answer: () => Code | "ok"): Promise<Instance> {
  const server = new GrpcServer({ log: createLogger("user", "silent"), metrics: createMetrics("user") });
  const self: { calls: number } = { calls: 0 };
  server.register(UserService, {
    getUser() {
      self.calls++;
      const a = answer();
      if (a !== "ok") throw new ConnectError("no", a);
      return { user: create(UserSchema, { id: 1n, handle: "alice" }) };
    },
  });
  const port = await server.listen("127.0.0.1", 0);
  const inst = Object.assign(self, { server, port }) as Instance;
  open.push({ close: () => server.close(0) });
  return inst;
}

function clientFor(...instances: Instance[]) {
  const transport = createGrpcTransport({ target: instances.map((i) => `127.0.0.1:${i.port}`).join(","), defaultTimeoutMs: 5000 });
  open.push(transport);
  return createClient(UserService, transport);
}

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("mesh client retries", () => {
  it("retries UNAVAILABLE on the other instance, so every call succeeds", async () => {
    const bad = await instance(() => Code.Unavailable);
    const good = await instance(() => "ok");
    const client = clientFor(bad, good);
    const codes: Array<Code | "ok"> = [];
    for (let i = 0; i < 20; i++) codes.push(await codeOf(client.getUser({ lookup: { case: "handle", value: "alice" } })));
    expect(codes.every((c) => c === "ok")).toBe(true);
    // Round-robin sent calls to the bad instance too; each was answered by the good one.
    expect(bad.calls).toBeGreaterThan(0);
    expect(good.calls).toBe(20);
  });

  it("does not retry any other code", async () => {
    for (const code of [Code.Internal, Code.NotFound, Code.Aborted, Code.DeadlineExceeded, Code.ResourceExhausted]) {
      const bad = await instance(() => code);
      const good = await instance(() => "ok");
      const client = clientFor(bad, good);
      const codes: Array<Code | "ok"> = [];
      for (let i = 0; i < 10; i++) codes.push(await codeOf(client.getUser({ lookup: { case: "handle", value: "alice" } })));
      // Every call reached exactly one instance, and the bad one's answers came back as they were.
      expect(bad.calls + good.calls).toBe(10);
      expect(codes.filter((c) => c === code)).toHaveLength(bad.calls);
      expect(bad.calls).toBeGreaterThan(0);
    }
  });

  it("does not repeat a method the proto does not declare safe to repeat (SignUp): its UNAVAILABLE may come from a call that ran", async () => {
    const server = new GrpcServer({ log: createLogger("user", "silent"), metrics: createMetrics("user") });
    let calls = 0;
    server.register(UserService, {
      signUp() {
        calls++;
        throw new ConnectError("no", Code.Unavailable);
      },
    });
    const port = await server.listen("127.0.0.1", 0);
    open.push({ close: () => server.close(0) });
    const client = clientFor({ server, port, calls: 0 }, { server, port, calls: 0 });
    const codes: Array<Code | "ok"> = [];
    for (let i = 0; i < 5; i++) {
      codes.push(await codeOf(client.signUp({ handle: "alice", displayName: "Alice", email: "alice@example.com", password: "correct horse battery" })));
    }
    expect(codes).toEqual(Array(5).fill(Code.Unavailable));
    expect(calls).toBe(5);
  });

  it(`gives up after ${MESH_RETRY_ATTEMPTS} attempts when every instance is unavailable`, async () => {
    const a = await instance(() => Code.Unavailable);
    const b = await instance(() => Code.Unavailable);
    const client = clientFor(a, b);
    expect(await codeOf(client.getUser({ lookup: { case: "handle", value: "alice" } }))).toBe(Code.Unavailable);
    expect(a.calls + b.calls).toBe(MESH_RETRY_ATTEMPTS);
    // Both instances were tried: the retry went to the other one.
    expect(a.calls).toBeGreaterThan(0);
    expect(b.calls).toBeGreaterThan(0);
  });
});

describe("gateway over two instances of a service", () => {
  let gateway: Gateway | undefined;
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  it("keeps answering while one instance is stopped mid-run", async () => {
    const a = await instance(() => "ok");
    const b = await instance(() => "ok");
    const config = loadGatewayConfig({
      CHIRP_GATEWAY_PORT: "0",
      CHIRP_USER_ADDR: `127.0.0.1:${a.port},127.0.0.1:${b.port}`,
      CHIRP_TOKEN_PUBLIC_KEYS: generateTokenKeys().publicKey,
      CHIRP_MESH_SECRET: TEST_MESH_SECRET,
    });
    gateway = await startGateway(config, createLogger("gateway", "silent"), createMetrics("gateway"));
    const url = `http://127.0.0.1:${gateway.port}/chirp.user.v1.UserService/GetUser`;
    const getUser = (): Promise<number> =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: '{"handle":"alice"}' }).then((r) => r.status);

    const statuses: number[] = [];
    let stopped = false;
    // Four callers at once; instance a is killed (no drain) a third of the way in.
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 60; i++) {
          if (!stopped && statuses.length >= 80) {
            stopped = true;
            // No grace: calls in flight on it are cut, new ones find its port closed.
            void a.server.close(0);
          }
          statuses.push(await getUser());
        }
      }),
    );
    expect(stopped).toBe(true);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Both served before the stop; b alone after it.
    expect(a.calls).toBeGreaterThan(10);
    expect(b.calls).toBeGreaterThan(120);
  });
});
