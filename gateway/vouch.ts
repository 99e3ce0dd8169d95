import type { DescMethod } from "@bufbuild/protobuf";
import type { AssertionSigner } from "../lib/auth/assertion.js";
import { ASSERTION_HEADER } from "../lib/rpc/metadata.js";

/**
 * Puts the assertion of a signed-in caller on a call the gateway forwards:
 * for this method and request id, valid the assertion TTL or the call's
 * deadline when that is longer (a hop on the caller's behalf late in a long
 * call still carries a live one), capped at 10 minutes.
 */
export type Vouching = (header: Headers, userId: string, sessionId: string, method: DescMethod, requestId: string, callTimeoutMs: number | undefined) => void;

const MAX_VALID_MS = 600_000;

export function createVouching(signer: AssertionSigner, ttlMs: number): Vouching {
  const names = new WeakMap<DescMethod, string>();
  return (header, userId, sessionId, method, requestId, callTimeoutMs) => {
    let name = names.get(method);
    if (name === undefined) names.set(method, (name = `${method.parent.typeName}/${method.name}`));
    const validMs = Math.min(MAX_VALID_MS, Math.max(ttlMs, callTimeoutMs ?? 0));
    header.set(ASSERTION_HEADER, signer.sign(userId, sessionId, name, requestId, validMs));
  };
}
