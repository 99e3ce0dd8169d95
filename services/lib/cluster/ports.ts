import { createServer } from "node:net";

// Ports handed out by this process; the OS may offer a just-closed port again,
// and two servers started in parallel must not both get it.
const handedOut = new Set<number>();

/**
 * A TCP port that is free on `host` right now: listen on port 0, read the
 * port, close. Another process can still take it before our server binds, so
 * callers retry a start that fails with "address in use".
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await listenAndClose(host);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found on ${host}`);
}

function listenAndClose(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
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
