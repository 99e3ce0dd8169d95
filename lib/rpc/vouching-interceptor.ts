import { randomUUID } from "node:crypto";
import type { Interceptor } from "@connectrpc/connect";
import { createAssertionSigner, parseMeshSecrets } from "../auth/assertion.js";
import { ASSERTION_HEADER, CALLER_ID_HEADER, REQUEST_ID_HEADER, SESSION_ID_HEADER } from "./metadata.js";

/**
 * For tools that hold the mesh secret and call a service directly as a user
 * (the seed CLI's backdated import, tests): a call given `x-chirp-caller-id`
 * (and optionally `x-chirp-session-id`) leaves with an assertion for its
 * method and request id instead, as the gateway would have made it.
 */
export function vouchingInterceptor(meshSecret: string, ttlMs = 60_000): Interceptor {
  const signer = createAssertionSigner(parseMeshSecrets(meshSecret)[0]!);
  return (next) => (req) => {
    const caller = req.header.get(CALLER_ID_HEADER);
    if (caller !== null) {
      const requestId = req.header.get(REQUEST_ID_HEADER) ?? randomUUID();
      req.header.set(REQUEST_ID_HEADER, requestId);
      const session = req.header.get(SESSION_ID_HEADER) ?? "1";
      req.header.delete(CALLER_ID_HEADER);
      req.header.delete(SESSION_ID_HEADER);
      req.header.set(ASSERTION_HEADER, signer.sign(caller, session, `${req.service.typeName}/${req.method.name}`, requestId, ttlMs));
    }
    return next(req);
  };
}
