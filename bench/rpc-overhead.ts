/**
 * RPC overhead benchmark: CPU per small unary call, split into server and
 * client, for the mesh's grpc-js stack against connect-node, with plain
 * node:http exchanging the same protobuf bytes as the floor.
 *
 *   npm run bench:rpc -- [--calls 20000] [--warmup 2000] [--concurrency 16] [--rounds 3] [--out bench/results/rpc-overhead.json]
 *
 * Each server runs in its own forked child (bench/rpc-overhead-server.ts) that
 * reports its process.cpuUsage() delta over the measured calls; this process is
 * the client, so its own cpuUsage delta over the same window is the client's
 * CPU. Rounds interleave the pairs, and each round's figures are also divided
 * by the same round's floor: on a shared, noisy machine those ratios are what
 * should be compared between runs.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport as createConnectGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { GetUserRequestSchema, GetUserResponseSchema, UserService } from "../gen/chirp/user/v1/user_service_pb.js";
import { createGrpcTransport } from "../lib/rpc/grpc-transport.js";
import { validateRequest } from "../lib/rpc/validation.js";
import { GET_USER_PATH, getUser, makeRequest, USER_ID, type FromServer, type ServerKind, type ToServer } from "./rpc-overhead-shared.js";

type ClientKind = "grpc-js" | "connect-node" | "node-http";

interface Pair {
  readonly name: string;
  readonly client: ClientKind;
  readonly server: ServerKind;
}

const FLOOR: Pair = { name: "node:http floor", client: "node-http", server: "node-http" };
const PAIRS: readonly Pair[] = [
  { name: "grpc-js -> grpc-js", client: "grpc-js", server: "grpc-js" },
  { name: "connect -> connect", client: "connect-node", server: "connect-node" },
  { name: "grpc-js -> connect", client: "grpc-js", server: "connect-node" },
  { name: "connect -> grpc-js", client: "connect-node", server: "grpc-js" },
  FLOOR,
];

interface Figures {
  readonly callsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuUsPerCall: number;
  readonly clientCpuUsPerCall: number;
}

interface Ratios {
  readonly serverCpu: number;
  readonly clientCpu: number;
  readonly callsPerSec: number;
}

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const SERVER_SCRIPT = fileURLToPath(new URL("./rpc-overhead-server.ts", import.meta.url));
const DEFAULT_OUT = fileURLToPath(new URL("./results/rpc-overhead.json", import.meta.url));

// ---------------------------------------------------------------- server children

class ServerChild {
  private readonly inbox: FromServer[] = [];
  private waiter: ((message: FromServer) => void) | undefined;
  port = 0;

  constructor(
    readonly kind: ServerKind,
    readonly child: ChildProcess,
  ) {
    child.on("message", (message: FromServer) => {
      const waiter = this.waiter;
      if (waiter !== undefined) {
        this.waiter = undefined;
        waiter(message);
      } else {
        this.inbox.push(message);
      }
    });
  }

  /** Next message from the child, failing if it exits or stays silent. */
  next(timeoutMs = 30_000): Promise<FromServer> {
    const queued = this.inbox.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null, signal: string | null): void => {
        clearTimeout(timer);
        this.waiter = undefined;
        reject(new Error(`${this.kind} server exited (code ${code}, signal ${signal})`));
      };
      const timer = setTimeout(() => {
        this.child.off("exit", onExit);
        this.waiter = undefined;
        reject(new Error(`${this.kind} server did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.child.once("exit", onExit);
      this.waiter = (message) => {
        clearTimeout(timer);
        this.child.off("exit", onExit);
        if (message.type === "error") reject(new Error(`${this.kind} server failed: ${message.message}`));
        else resolve(message);
      };
    });
  }

  async request<T extends FromServer["type"]>(message: ToServer, expect: T): Promise<Extract<FromServer, { type: T }>> {
    this.child.send(message);
    const reply = await this.next();
    if (reply.type !== expect) throw new Error(`${this.kind} server answered ${reply.type}, expected ${expect}`);
    return reply as Extract<FromServer, { type: T }>;
  }
}

const children = new Set<ChildProcess>();

async function startServer(kind: ServerKind): Promise<ServerChild> {
  const child = fork(SERVER_SCRIPT, [kind], {
    // Load tsx's loader explicitly rather than relying on how this process was started.
    execArgv: ["--import", import.meta.resolve("tsx")],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const server = new ServerChild(kind, child);
  const ready = await server.next(60_000);
  if (ready.type !== "ready") throw new Error(`${kind} server sent ${ready.type} before ready`);
  server.port = ready.port;
  return server;
}

async function stopServer(server: ServerChild): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  if (child.connected) child.send({ type: "shutdown" } satisfies ToServer);
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Last resort, synchronous: used on process exit and signals. */
function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

// ---------------------------------------------------------------- clients

interface Client {
  call(): Promise<void>;
  close(): void;
}

function checkResponse(id: bigint | undefined): void {
  if (id !== USER_ID) throw new Error(`unexpected response: user id ${String(id)}`);
}

function makeClient(kind: ClientKind, port: number, concurrency: number): Client {
  const request = makeRequest();
  switch (kind) {
    case "grpc-js": {
      // The project's adapter, as the mesh uses it (without the optional client metrics).
      const transport = createGrpcTransport({ target: `127.0.0.1:${port}` });
      const client = createClient(UserService, transport);
      return {
        call: async () => checkResponse((await client.getUser(request)).user?.id),
        close: () => transport.close(),
      };
    }
    case "connect-node": {
      const baseUrl = `http://127.0.0.1:${port}`;
      const sessionManager = new Http2SessionManager(baseUrl);
      // gRPC needs HTTP/2: connect-node's createGrpcTransport always sets httpVersion "2"
      // (its options type does not even accept the field).
      const transport = createConnectGrpcTransport({ baseUrl, sessionManager });
      const client = createClient(UserService, transport);
      return {
        call: async () => checkResponse((await client.getUser(request)).user?.id),
        close: () => sessionManager.abort(),
      };
    }
    case "node-http": {
      const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
      const call = (): Promise<void> =>
        new Promise((resolve, reject) => {
          const body = toBinary(GetUserRequestSchema, request);
          const req = http.request(
            {
              agent,
              host: "127.0.0.1",
              port,
              method: "POST",
              path: GET_USER_PATH,
              headers: { "content-type": "application/proto", "content-length": body.byteLength },
            },
            (res) => {
              const chunks: Buffer[] = [];
              res.on("data", (chunk: Buffer) => chunks.push(chunk));
              res.on("error", reject);
              res.on("end", () => {
                if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
                try {
                  const response = fromBinary(GetUserResponseSchema, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
                  checkResponse(response.user?.id);
                  resolve();
                } catch (err) {
                  reject(err);
                }
              });
            },
          );
          req.on("error", reject);
          req.end(body);
        });
      return { call, close: () => agent.destroy() };
    }
  }
}

// ---------------------------------------------------------------- measuring

/** Runs `total` calls with `concurrency` in flight; returns each call's latency in ms. */
async function runCalls(call: () => Promise<void>, total: number, concurrency: number): Promise<Float64Array> {
  const latencies = new Float64Array(total);
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < total) {
      const i = issued++;
      const started = performance.now();
      await call();
      latencies[i] = performance.now() - started;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return latencies;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function measure(client: Client, server: ServerChild, calls: number, warmup: number, concurrency: number): Promise<Figures> {
  await runCalls(client.call, warmup, concurrency);
  await server.request({ type: "start" }, "started");
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const latencies = await runCalls(client.call, calls, concurrency);
  const elapsedMs = performance.now() - t0;
  const clientCpu = process.cpuUsage(cpu0);
  const serverCpu = await server.request({ type: "stop" }, "stopped");
  latencies.sort();
  return {
    callsPerSec: (calls * 1000) / elapsedMs,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    serverCpuUsPerCall: (serverCpu.userMicros + serverCpu.systemMicros) / calls,
    clientCpuUsPerCall: (clientCpu.user + clientCpu.system) / calls,
  };
}

/** In-process cost of pieces every call pays, for reading the table (not part of any pair's figures). */
function inProcessCosts(iterations: number): { validateUsPerCall: number; protobufHandlerUsPerCall: number } {
  const request = makeRequest();
  const time = (fn: () => void): number => {
    for (let i = 0; i < Math.min(iterations, 2000); i++) fn();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < iterations; i++) fn();
    const used = process.cpuUsage(cpu0);
    return (used.user + used.system) / iterations;
  };
  const requestBytes = toBinary(GetUserRequestSchema, request);
  return {
    validateUsPerCall: time(() => validateRequest(GetUserRequestSchema, request)),
    // What the floor server does per call: decode the request, run the handler, encode the response.
    protobufHandlerUsPerCall: time(() => {
      toBinary(GetUserResponseSchema, getUser(fromBinary(GetUserRequestSchema, requestBytes)));
    }),
  };
}

// ---------------------------------------------------------------- reporting

const fmt = (value: number, digits = 0): string => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");

function table(rows: readonly { pair: Pair; figures: Figures; ratios: Ratios }[]): string {
  const header = ["pair (client -> server)", "calls/s", "p50 ms", "p99 ms", "server CPU µs/call", "client CPU µs/call", "server × floor", "client × floor"];
  const lines = rows.map(({ pair, figures, ratios }) => [
    pair.name,
    fmt(figures.callsPerSec),
    fmt(figures.p50Ms, 2),
    fmt(figures.p99Ms, 2),
    fmt(figures.serverCpuUsPerCall),
    fmt(figures.clientCpuUsPerCall),
    fmt(ratios.serverCpu, 1),
    fmt(ratios.clientCpu, 1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [row(header), rule, ...lines.map(row)].join("\n");
}

function packageVersions(): Record<string, string> {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  const deps = manifest.dependencies ?? {};
  const names = ["@grpc/grpc-js", "@connectrpc/connect", "@connectrpc/connect-node", "@bufbuild/protobuf", "@bufbuild/protovalidate"];
  return Object.fromEntries(names.map((n) => [n, deps[n] ?? "?"]));
}

// ---------------------------------------------------------------- main

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      calls: { type: "string" },
      warmup: { type: "string" },
      concurrency: { type: "string" },
      rounds: { type: "string" },
      out: { type: "string" },
    },
  });
  const params = {
    calls: positiveInt("calls", values.calls, 20_000),
    warmup: positiveInt("warmup", values.warmup, 2_000),
    concurrency: positiveInt("concurrency", values.concurrency, 16),
    rounds: positiveInt("rounds", values.rounds, 3),
  };
  const out = values.out ?? DEFAULT_OUT;
  const started = new Date();
  const cpus = os.cpus();
  console.log(
    `rpc-overhead: ${params.calls} calls (+${params.warmup} warm-up) x ${params.rounds} rounds, ${params.concurrency} in flight; ` +
      `${cpus.length} x ${cpus[0]?.model ?? "?"}, node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
  );

  const inProcess = inProcessCosts(20_000);
  console.log(
    `in-process, per call: protovalidate GetUserRequest ${fmt(inProcess.validateUsPerCall, 1)} µs; ` +
      `protobuf decode + handler + encode ${fmt(inProcess.protobufHandlerUsPerCall, 1)} µs`,
  );

  const servers = new Map<ServerKind, ServerChild>();
  const clients = new Map<Pair, Client>();
  const perRound = new Map<Pair, Figures[]>(PAIRS.map((p) => [p, []]));
  const ratioRounds = new Map<Pair, Ratios[]>(PAIRS.map((p) => [p, []]));
  try {
    for (const server of await Promise.all((["grpc-js", "connect-node", "node-http"] as const).map(startServer))) {
      servers.set(server.kind, server);
    }
    for (const pair of PAIRS) clients.set(pair, makeClient(pair.client, servers.get(pair.server)!.port, params.concurrency));

    for (let round = 1; round <= params.rounds; round++) {
      const thisRound = new Map<Pair, Figures>();
      for (const pair of PAIRS) {
        const t0 = performance.now();
        const figures = await measure(clients.get(pair)!, servers.get(pair.server)!, params.calls, params.warmup, params.concurrency);
        thisRound.set(pair, figures);
        perRound.get(pair)!.push(figures);
        console.log(
          `[round ${round}/${params.rounds}] ${pair.name.padEnd(20)} ${fmt(figures.callsPerSec).padStart(6)} calls/s  ` +
            `p50 ${fmt(figures.p50Ms, 2)} ms  p99 ${fmt(figures.p99Ms, 2)} ms  ` +
            `server ${fmt(figures.serverCpuUsPerCall)} µs/call  client ${fmt(figures.clientCpuUsPerCall)} µs/call  ` +
            `(${fmt((performance.now() - t0) / 1000, 1)} s)`,
        );
      }
      const floor = thisRound.get(FLOOR)!;
      for (const pair of PAIRS) {
        const f = thisRound.get(pair)!;
        ratioRounds.get(pair)!.push({
          serverCpu: f.serverCpuUsPerCall / floor.serverCpuUsPerCall,
          clientCpu: f.clientCpuUsPerCall / floor.clientCpuUsPerCall,
          callsPerSec: f.callsPerSec / floor.callsPerSec,
        });
      }
    }
  } finally {
    for (const client of clients.values()) client.close();
    await Promise.all([...servers.values()].map(stopServer));
  }

  const medianOf = <T extends object>(items: readonly T[]): T => {
    const first = items[0]!;
    return Object.fromEntries(Object.keys(first).map((k) => [k, median(items.map((i) => i[k as keyof T] as number))])) as T;
  };
  const rows = PAIRS.map((pair) => ({
    pair,
    figures: medianOf(perRound.get(pair)!),
    ratios: medianOf(ratioRounds.get(pair)!),
  }));

  console.log(`\nmedian of ${params.rounds} rounds (× floor = median of each round's figure / that round's node:http floor):\n`);
  console.log(table(rows));

  const result = {
    benchmark: "rpc-overhead",
    date: started.toISOString(),
    durationSec: Math.round((Date.now() - started.getTime()) / 100) / 10,
    machine: {
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? "unknown",
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      node: process.version,
      loadAverageAtEnd: os.loadavg(),
    },
    packages: packageVersions(),
    parameters: { ...params, rpc: "chirp.user.v1.UserService/GetUser", transport: "loopback 127.0.0.1, h2c for gRPC, HTTP/1.1 keep-alive for the floor" },
    inProcessUsPerCall: inProcess,
    pairs: rows.map(({ pair, figures, ratios }) => ({
      name: pair.name,
      client: pair.client,
      server: pair.server,
      median: figures,
      vsFloor: ratios,
      rounds: perRound.get(pair),
    })),
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${out.startsWith(BENCH_DIR) ? `bench${out.slice(BENCH_DIR.length)}` : out}`);
}

process.on("exit", killChildren);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killChildren();
    process.exit(130);
  });
}

main().then(
  // grpc-js and http2 may keep handles alive for a moment after close; the work is done.
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    killChildren();
    process.exit(1);
  },
);
