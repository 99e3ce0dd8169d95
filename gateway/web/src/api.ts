// The public API from the browser: connect-web's Connect transport (JSON over
// fetch; StreamEvents is a Connect server stream over the same fetch), the
// generated service descriptors, and the session.
//
// The session token is kept in localStorage, so a reload or a new tab stays
// signed in. Any script running on this origin could read it, which is why
// the page runs no script but its own bundle (the gateway's CSP allows
// nothing else, inline or remote) and never turns user data into markup
// (dom.ts); a token also dies on its own after CHIRP_TOKEN_TTL_SECONDS.
// Keeping it only in memory would log people out on every reload.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { GraphService } from "../../../gen/chirp/graph/v1/graph_service_pb.js";
import type { Media } from "../../../gen/chirp/media/v1/media_pb.js";
import { NotificationService } from "../../../gen/chirp/notification/v1/notification_service_pb.js";
import { SearchService } from "../../../gen/chirp/search/v1/search_service_pb.js";
import { TimelineService } from "../../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetService } from "../../../gen/chirp/tweet/v1/tweet_service_pb.js";
import type { User } from "../../../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../../../gen/chirp/user/v1/user_service_pb.js";

export interface Session {
  readonly token: string;
  readonly userId: bigint;
  readonly handle: string;
}

const SESSION_KEY = "chirp.session";
let session: Session | undefined = loadSession();
const listeners = new Set<(s: Session | undefined) => void>();

function loadSession(): Session | undefined {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    if (raw === null) return undefined;
    const s = JSON.parse(raw) as { token: string; userId: string; handle: string };
    return { token: s.token, userId: BigInt(s.userId), handle: s.handle };
  } catch {
    return undefined;
  }
}

export function currentSession(): Session | undefined {
  return session;
}

export function setSession(next: Session | undefined): void {
  session = next;
  if (next === undefined) localStorage.removeItem(SESSION_KEY);
  else localStorage.setItem(SESSION_KEY, JSON.stringify({ token: next.token, userId: String(next.userId), handle: next.handle }));
  for (const l of listeners) l(next);
}

export function onSessionChange(listener: (s: Session | undefined) => void): void {
  listeners.add(listener);
}

/** Adds the bearer token; a token the gateway refuses ends the session. */
const auth: Interceptor = (next) => async (req) => {
  if (session !== undefined) req.header.set("authorization", `Bearer ${session.token}`);
  try {
    return await next(req);
  } catch (err) {
    if (ConnectError.from(err).code === Code.Unauthenticated && session !== undefined) setSession(undefined);
    throw err;
  }
};

const transport = createConnectTransport({ baseUrl: location.origin, interceptors: [auth] });

export const users = createClient(UserService, transport);
export const graph = createClient(GraphService, transport);
export const tweets = createClient(TweetService, transport);
export const timelines = createClient(TimelineService, transport);
export const search = createClient(SearchService, transport);
export const notifications = createClient(NotificationService, transport);

/** Signs up or logs in, and keeps the session. */
export function startSession(user: User | undefined, token: string): void {
  if (user === undefined) throw new Error("no user in the answer");
  setSession({ token, userId: user.id, handle: user.handle });
}

/** POST /media: the file as the body, its type as Content-Type. */
export async function uploadMedia(file: Blob): Promise<Media & { id: bigint }> {
  const res = await fetch("/media", {
    method: "POST",
    headers: { "content-type": file.type || "application/octet-stream", ...(session ? { authorization: `Bearer ${session.token}` } : {}) },
    body: file,
  });
  const json = (await res.json()) as { id?: string; code?: string; message?: string };
  if (!res.ok || json.id === undefined) {
    const retry = res.headers.get("retry-after");
    throw new Error(res.status === 429 ? `Too many uploads: try again in ${retry ?? "a few"} s` : (json.message ?? `upload failed (${res.status})`));
  }
  return { ...(json as unknown as Media), id: BigInt(json.id) };
}

/** A short sentence for the person in front of the screen. */
export function describeError(err: unknown): string {
  if (err instanceof Error && !(err instanceof ConnectError)) return err.message;
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.ResourceExhausted: {
      const wait = e.metadata.get("retry-after");
      return `Slow down: try again in ${wait ?? "a few"} s.`;
    }
    case Code.Unauthenticated:
      return "Your session has ended. Log in again.";
    case Code.Unavailable:
      return "Chirp is not reachable right now. Try again in a moment.";
    case Code.Unimplemented:
      return "That part of Chirp is not running yet.";
    default:
      return e.rawMessage || "Something went wrong.";
  }
}
