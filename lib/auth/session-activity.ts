// Sessions' last activity (ListSessions' lastActiveTime) without a write per
// request: each gateway reports a session at most once per REPORT_EVERY_MS,
// as a core NATS message (not stored) that one user-service process records.
import { LruMap } from "../lru.js";
import type { EventBus } from "../events/bus.js";

/** Core NATS subject of the reports: `<user id> <session id> <ms since the epoch>`. */
export const SESSION_ACTIVE_SUBJECT = "chirp_session_active";
/** A session used again within this long of its last report is not reported again. */
export const REPORT_EVERY_MS = 5 * 60_000;
/** Sessions a gateway remembers having reported; one pushed out is reported again on its next use. */
const REMEMBERED = 50_000;

/** A function the gateway calls for every authenticated request; it publishes at most one report per session per REPORT_EVERY_MS. */
export function sessionActivityReporter(bus: EventBus, now: () => number = Date.now): (userId: string, sessionId: string) => void {
  const reported = new LruMap<string, number>(REMEMBERED);
  return (userId, sessionId) => {
    const t = now();
    const last = reported.get(sessionId);
    if (last !== undefined && t - last < REPORT_EVERY_MS) return;
    const nc = bus.current()?.nc;
    if (nc === undefined) return;
    reported.set(sessionId, t);
    nc.publish(SESSION_ACTIVE_SUBJECT, `${userId} ${sessionId} ${t}`);
  };
}
