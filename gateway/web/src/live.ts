// The caller's live events (TimelineService/StreamEvents, a Connect server
// stream over fetch), kept open while signed in: reconnected with back-off
// when it drops, since events that happen while it is closed are not replayed
// (views re-read their first page on reconnect).
import { Code, ConnectError } from "@connectrpc/connect";
import type { StreamEventsResponse } from "../../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { currentSession, timelines } from "./api.js";

export type LiveEvent = StreamEventsResponse["event"];

export interface LiveHandlers {
  onEvent(event: LiveEvent): void;
  /** The stream is open again after a break: anything may have been missed. */
  onReconnect(): void;
  onState(state: "connecting" | "live" | "offline"): void;
}

export function startLive(handlers: LiveHandlers): () => void {
  const abort = new AbortController();
  void (async () => {
    let backoffMs = 1000;
    let everOpen = false;
    while (!abort.signal.aborted && currentSession() !== undefined) {
      handlers.onState("connecting");
      let first = true;
      try {
        for await (const message of timelines.streamEvents({}, { signal: abort.signal })) {
          // The first message (a keepalive) says the stream is registered: from here on nothing is missed.
          if (first) {
            first = false;
            if (everOpen) handlers.onReconnect();
            everOpen = true;
            backoffMs = 1000;
            handlers.onState("live");
          }
          if (message.event.case !== "keepalive" && message.event.case !== undefined) handlers.onEvent(message.event);
        }
      } catch (err) {
        if (abort.signal.aborted) return;
        const code = ConnectError.from(err).code;
        if (code === Code.Unauthenticated) return;
        // Not built yet: no point asking again soon.
        if (code === Code.Unimplemented) backoffMs = 30_000;
      }
      handlers.onState("offline");
      await new Promise((resolve) => setTimeout(resolve, backoffMs * (0.75 + Math.random() / 2)));
      backoffMs = Math.min(backoffMs * 2, 30_000);
    }
  })();
  return () => abort.abort();
}
