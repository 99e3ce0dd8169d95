// A deleted account's erasure, as every service's consumer of UserDeleted
// runs it (docs/decisions/0025-account-deletion-by-events.md): once at once,
// and once more when the event is SECOND_PASS_AGE_MS old, for what was still
// on its way at the deletion (a call that passed the gateway before the
// sessions ended and committed after the first pass, a like relayed late, a
// follow edge whose copy came late). Both passes erase "what is left", so
// the second usually finds nothing.
import type { ConsumedEvent, ConsumeOptions, EventConsumer } from "./consumer.js";
import { consume, DeferEventError } from "./consumer.js";
import { EVENTS } from "./subjects.js";

/** How old the UserDeleted event is when each erasure runs the second time. */
export const SECOND_PASS_AGE_MS = 30_000;

export type UserDeletedEvent = ConsumedEvent<typeof EVENTS.userDeleted>;

/**
 * The handler of a consumer of UserDeleted: `erase` for the deleted user,
 * then, while the event is younger than `secondPassAgeMs`, the event asked
 * for again at that age (DeferEventError), which runs `erase` once more.
 */
export function eraseTwice(
  erase: (userId: bigint, event: UserDeletedEvent) => Promise<void>,
  secondPassAgeMs: number = SECOND_PASS_AGE_MS,
): (event: UserDeletedEvent) => Promise<void> {
  return async (event) => {
    await erase(event.message.userId, event);
    const age = Date.now() - event.publishTime.getTime();
    if (age < secondPassAgeMs) throw new DeferEventError(secondPassAgeMs - age);
  };
}

/** Deliveries before an erasure is dead-lettered: with the consumer's backoff, about 90 minutes of retries. */
export const ERASE_MAX_DELIVER = 100;

/**
 * A service's durable consumer of UserDeleted: `erase` run twice (eraseTwice),
 * and not given up lightly (ERASE_MAX_DELIVER deliveries). The other options
 * are consume()'s.
 */
export function consumeUserDeleted(
  opts: Omit<ConsumeOptions<typeof EVENTS.userDeleted>, "subjects" | "handler" | "maxDeliver"> & {
    readonly erase: (userId: bigint, event: UserDeletedEvent) => Promise<void>;
  },
): EventConsumer {
  const { erase, ...rest } = opts;
  // Erasing an account can take long: no events held waiting behind it (consumer.ts, pullAhead).
  return consume({ pullAhead: 0, ...rest, subjects: [EVENTS.userDeleted], handler: eraseTwice(erase), maxDeliver: ERASE_MAX_DELIVER });
}
