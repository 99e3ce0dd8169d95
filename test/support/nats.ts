// A private nats-server with JetStream for a test file that needs NATS alone
// (the event bus, the relay's publisher, node-id leases): free port,
// throwaway data dir, stopped and removed with stop().
import { rm } from "node:fs/promises";
import { findBinary } from "../../devcluster/binaries.js";
import { newTestDataDir } from "../../devcluster/index.js";
import { startNats } from "../../devcluster/nats.js";

export interface TestNats {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startTestNats(): Promise<TestNats> {
  const dir = newTestDataDir();
  const server = await startNats({ binary: findBinary("nats-server", { path: process.env["PATH"] }), dir, log: () => {} });
  return {
    url: server.url,
    async stop() {
      await server.proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
