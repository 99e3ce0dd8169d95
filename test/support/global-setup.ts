// Vitest globalSetup of the "system" project: one private cluster (two
// MariaDB replica sets, Redis, NATS) for the whole `npm test` run, shared by
// every test file that needs the running system. Each file then takes a
// tenant of it (shared-cluster.ts): its own shard databases, Redis database
// and NATS account, so files run in parallel without seeing each other.
// Files that kill, freeze or restart servers start a cluster of their own.
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { REPO_ROOT, startLocalCluster, type InfraInfo, type NatsAccount } from "../../devcluster/index.js";
import { bundleMeshEntries } from "../../devcluster/launch.js";

/** Tenants one run can hand out: more than the test files that share the cluster. */
export const TENANTS = 64;

export interface SharedClusterInfo {
  readonly infra: InfraInfo;
  /** The mesh entries bundled once for every file (LaunchOptions.entries). */
  readonly bundles: string;
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
  const bundles = join(REPO_ROOT, ".data", `test-bundles-${process.pid}`);
  const [infra] = await Promise.all([startLocalCluster({
    ephemeral: true,
    log: () => {},
    natsAccounts: accounts,
    // Database 0 holds the tenant counter; tenant i uses database i.
    redisDatabases: TENANTS + 1,
  }), bundleMeshEntries(bundles)]);
  process.stdout.write(`[shared cluster] ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  project.provide("chirpSharedCluster", { infra: infra.toJSON(), accounts, bundles });
  return async () => {
    await infra.stop();
    await rm(bundles, { recursive: true, force: true });
  };
}
