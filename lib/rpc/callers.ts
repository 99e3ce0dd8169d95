import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { AssertionError, type AssertionVerifier } from "../auth/assertion.js";
import { SERVICE_NAMES, type ServiceName } from "../mesh.js";
import { ASSERTION_HEADER, CALLER_ID_HEADER, REQUEST_ID_HEADER, SESSION_ID_HEADER } from "./metadata.js";

/**
 * The methods a service calls on behalf of the caller of the call it is
 * handling (`onBehalfOf`, mesh-clients.ts), with the assertion the gateway
 * made for that call's public method passed on unchanged. An assertion is
 * accepted for the public method it names and for these; for any other
 * method it is Unauthenticated. A service that starts calling another
 * method on behalf of a caller adds it here (an e2e path fails until then).
 */
export const ON_BEHALF_METHODS: ReadonlySet<string> = new Set([
  "chirp.user.v1.UserService/BatchGetUsers",
  "chirp.user.v1.UserService/GetUser",
  "chirp.graph.v1.GraphService/ListFollowingIds",
  "chirp.graph.v1.GraphService/ListRelationIds",
  "chirp.tweet.v1.TweetService/BatchGetTweets",
  "chirp.media.v1.MediaService/BatchGetMedia",
  "chirp.media.v1.MediaService/AttachMedia",
]);

/** What is worked out once per method, not per call. */
interface MethodFacts {
  readonly service: ServiceName;
  readonly name: string;
  /** Never retried (rpc/unrepeatable.ts): its assertion may be used once, as the public method. */
  readonly unrepeatable: boolean;
  readonly onBehalf: boolean;
}

const facts = new WeakMap<DescMethod, MethodFacts>();

function factsOf(method: DescMethod): MethodFacts {
  let f = facts.get(method);
  if (f === undefined) {
    const name = `${method.parent.typeName}/${method.name}`;
    const service = method.parent.typeName.split(".")[1] as ServiceName;
    if (!SERVICE_NAMES.includes(service)) throw new Error(`${method.parent.typeName} is not a mesh service`);
    f = { service, name, unrepeatable: method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN, onBehalf: ON_BEHALF_METHODS.has(name) };
    facts.set(method, f);
  }
  return f;
}

/**
 * Where every call into a service is admitted (GrpcServer and the
 * in-process transport alike), before its handler runs: the caller headers
 * a handler reads (`x-chirp-caller-id`, `x-chirp-session-id`, through
 * lib/auth/caller.ts) are set here from a verified assertion, and from
 * nothing else.
 *
 *   - no assertion and no caller header: an anonymous call (consumers, sweeps);
 *   - a caller or session header without an assertion: Unauthenticated;
 *   - an assertion that does not verify (another key, tampered, expired,
 *     another request id, a method it was not made for, a second use of a
 *     once-only call): Unauthenticated.
 *
 * `header` is the call's own request header object, changed in place.
 */
export interface CallerCheck {
  admit(method: DescMethod, header: Headers): void;
}

/** `verifier` undefined: a process holding no mesh key, which accepts anonymous calls only. */
export function createCallerCheck(verifier: AssertionVerifier | undefined): CallerCheck {
  return {
    admit(method, header) {
      const assertion = header.get(ASSERTION_HEADER);
      if (assertion === null) {
        if (header.has(CALLER_ID_HEADER) || header.has(SESSION_ID_HEADER)) throw unvouched(new AssertionError("unvouched"));
        return;
      }
      if (verifier === undefined) throw unvouched(new AssertionError("unknown_key"));
      const f = factsOf(method);
      try {
        // The method it was made for, or one reached on the caller's behalf from there.
        const own = assertionMethodIs(assertion, f.name);
        if (!own && !f.onBehalf) throw new AssertionError("wrong_method");
        const claims = verifier.verify(assertion, f.service, header.get(REQUEST_ID_HEADER), own && f.unrepeatable);
        if (claims.method !== f.name && !f.onBehalf) throw new AssertionError("wrong_method");
        header.set(CALLER_ID_HEADER, claims.userId);
        header.set(SESSION_ID_HEADER, claims.sessionId);
      } catch (err) {
        if (err instanceof AssertionError) throw unvouched(err);
        throw err;
      }
    },
  };
}

/** Whether the assertion's method field is `name`, without splitting it (a cheap pre-check; the verified claims decide). */
function assertionMethodIs(assertion: string, name: string): boolean {
  const end = assertion.lastIndexOf(";");
  return end > name.length && assertion.startsWith(name, end - name.length) && assertion.charCodeAt(end - name.length - 1) === 59;
}

function unvouched(cause: AssertionError): ConnectError {
  return new ConnectError("caller not vouched for", Code.Unauthenticated, undefined, undefined, cause);
}
