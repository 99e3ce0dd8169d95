import type { BaseContext } from "./service-main.js";

/**
 * The context every service starts from. It grows the shared resources
 * (shard router, Redis, NATS) as the services that need them land; each
 * service may extend it in its own context.ts.
 */
export interface ServiceContext extends BaseContext {
  close(): Promise<void>;
}

export async function createServiceContext(base: BaseContext): Promise<ServiceContext> {
  return { ...base, close: async () => {} };
}
