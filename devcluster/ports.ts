import { readFileSync } from "node:fs";
import { createServer } from "node:net";

// Ports handed out by this process; two servers started in parallel must not both get one.
const handedOut = new Set<number>();

/**
 * A TCP port that is free on `host` right now, for a server started next.
 *
 * Ports come from below the kernel's ephemeral range (Linux:
 * /proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default), picked at
 * random and checked by binding them. A port from inside that range (what
 * listening on port 0 gives) can be taken by any outgoing connection of any
 * process before our server binds it; with a test run opening thousands of
 * MySQL, Redis and NATS connections, that happened (a mesh process exiting
 * with "address in use" at start). Another picker can still choose the same
 * port in the same moment, so callers that can retry a failed start do.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const [low, high] = PICK_RANGE;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    if (await canListen(host, port)) {
      handedOut.add(port);
      return port;
    }
  }
  // A crowded range (or a kernel whose ephemeral range leaves none below it): let the OS choose.
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await listenAndClose(host, 0);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found on ${host}`);
}

/** Below the ephemeral range, above the well-known and common service ports. */
const PICK_RANGE: readonly [number, number] = (() => {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    // Not Linux: IANA's dynamic range starts at 49152; 32768 is below it as well.
  }
  const low = 20000;
  const high = Math.max(low + 1000, Math.min(ephemeralLow - 1, 32767));
  return [low, high];
})();

async function canListen(host: string, port: number): Promise<boolean> {
  try {
    await listenAndClose(host, port);
    return true;
  } catch {
    return false;
  }
}

function listenAndClose(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port, exclusive: true }, () => {
      const addr = server.address();
      if (addr === null || typeof addr === "string") {
        server.close();
        reject(new Error("listen returned no port"));
        return;
      }
      server.close(() => resolve(addr.port));
    });
  });
}
