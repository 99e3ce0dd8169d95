// Vitest globalSetup of the "system" project: one private cluster (two
// MariaDB replica sets, Redis, NATS) for the whole `npm test` run, shared by
// every test file that needs the running system. Each file then takes a
// tenant of it (shared-cluster.ts): its own shard databases, Redis database
// and NATS account, so files run in parallel without seeing each other.
// Files that kill, freeze or restart servers start a cluster of their own.
import { randomBytes } from "node:crypto";
import type { TestProject } from "vitest/node";
import { startLocalCluster, type InfraInfo, type NatsAccount } from "../../services/lib/cluster/index.js";

/** Tenants one run can hand out: more than the test files that share the cluster. */
export const TENANTS = 64;

export interface SharedClusterInfo {
  readonly infra: InfraInfo;
  /** NATS account of tenant i (1-based) at index i - 1. */
  readonly accounts: readonly NatsAccount[];
}

declare module "vitest" {
  export interface ProvidedContext {
    chirpSharedCluster: SharedClusterInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const accounts = Array.from({ length: TENANTS }, (_, i) => ({ user: `t${i + 1}`, password: randomBytes(12).toString("hex") }));
  const started = Date.now();
  const infra = await startLocalCluster({
    ephemeral: true,
    log: () => {},
    natsAccounts: accounts,
    // Database 0 holds the tenant counter; tenant i uses database i.
    redisDatabases: TENANTS + 1,
  });
  process.stdout.write(`[shared cluster] ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  project.provide("chirpSharedCluster", { infra: infra.toJSON(), accounts });
  return () => infra.stop();
}
