// One socket write per turn of the event loop for a NATS connection, instead
// of one per microtask checkpoint.
//
// nats.js queues every protocol command (a publish, an ack, a pull request)
// in its outbound buffer and writes the buffer out from a microtask queued
// with the first command. Node drains the microtasks after every I/O
// callback, so the acks of event handlers that finish in different callbacks
// (one on a MySQL answer, one on a Redis reply, ...) each went out in a write
// of their own: a system call, and on loopback the whole TCP path and a
// wake-up of nats-server, for some 30 bytes. Here the write is put off to
// setImmediate, which runs once the loop has handled every callback that was
// ready: everything queued in that turn goes out together.
//
// Measured (posts alone, `npm run bench -- --modes single --no-floor --work 0
// --seconds 15 --warmup 3 --rate 100 --mix compose=1 --concurrency 8`,
// alternated, a scratch switch): the process 3.60 and 3.75 -> 3.49 and 3.51 ms
// of CPU per post, nats-server 0.57 -> 0.42 ms, p50 at 100 posts/s 4.83 and
// 4.89 -> 4.48 and 4.51 ms.
//
// It wraps ProtocolHandler.flushPending, which nats.js does not export as API
// (@nats-io/nats-core 3.x, pinned in package-lock.json); if that is not
// there, the connection is left as it is. Nothing queued is lost by the
// delay: close() is reached through drain() or after flush() (a PING answered
// by a PONG), and both go through the same deferred write.
import type { NatsConnection } from "@nats-io/transport-node";

interface Flushing {
  flushPending: () => void;
}

/** Defers `nc`'s writes to the end of the loop's turn; false when this nats.js has no flushPending to wrap. */
export function coalesceFlushes(nc: NatsConnection): boolean {
  const protocol = (nc as unknown as { protocol?: Partial<Flushing> }).protocol;
  if (protocol === undefined || typeof protocol.flushPending !== "function") return false;
  const writeOut = protocol.flushPending.bind(protocol);
  let due = false;
  protocol.flushPending = () => {
    if (due) return;
    due = true;
    setImmediate(() => {
      due = false;
      writeOut();
    });
  };
  return true;
}
