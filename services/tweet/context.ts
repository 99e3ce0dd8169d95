import { loadRelayConfig, type RelayConfig } from "../lib/events/config.js";
import { startOutboxRelay, type OutboxRelay } from "../lib/events/relay.js";
import { createServiceContext, type ServiceContext } from "../lib/service-context.js";
import type { BaseContext } from "../lib/service-main.js";

/** The shared service context plus the outbox relay, which runs in this process (ARCHITECTURE, services). */
export interface TweetContext extends ServiceContext {
  /** Undefined when CHIRP_RELAY_ENABLED=false or NATS_URL is not set. */
  readonly relay: OutboxRelay | undefined;
}

export async function createTweetContext(base: BaseContext): Promise<TweetContext> {
  // Config first: a bad CHIRP_RELAY_* fails the start before any pool opens.
  const relayConfig: RelayConfig = loadRelayConfig(base.env);
  const shared = await createServiceContext(base);
  let relay: OutboxRelay | undefined;
  if (!relayConfig.enabled) base.log.info("outbox relay disabled (CHIRP_RELAY_ENABLED=false)");
  else if (shared.bus === undefined) base.log.warn("NATS_URL not set: outbox rows stay unsent until a relay with NATS runs");
  else relay = startOutboxRelay({ router: shared.router, bus: shared.bus, config: relayConfig, log: base.log, metrics: base.metrics });
  return {
    ...shared,
    relay,
    // Reverse order of opening: the relay (finishes its round, releases its leases) before the bus and pools it uses.
    close: async () => {
      await relay?.stop();
      await shared.close();
    },
  };
}
