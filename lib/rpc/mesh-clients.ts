import { createClient, type CallOptions, type Client, type HandlerContext } from "@connectrpc/connect";
import { GraphService } from "../../gen/chirp/graph/v1/graph_service_pb.js";
import { MediaService } from "../../gen/chirp/media/v1/media_service_pb.js";
import { NotificationService } from "../../gen/chirp/notification/v1/notification_service_pb.js";
import { SearchService } from "../../gen/chirp/search/v1/search_service_pb.js";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import type { ServiceName } from "../mesh.js";
import type { Metrics } from "../metrics.js";
import { createGrpcTransport } from "./grpc-transport.js";
import type { InProcessServices } from "./in-process.js";
import { ASSERTION_HEADER, REQUEST_ID_HEADER } from "./metadata.js";

const DESCRIPTORS = {
  user: UserService,
  graph: GraphService,
  tweet: TweetService,
  timeline: TimelineService,
  search: SearchService,
  media: MediaService,
  notification: NotificationService,
} as const;

export type MeshClients = { readonly [S in ServiceName]: Client<(typeof DESCRIPTORS)[S]> } & { close(): void };

/**
 * Typed clients for calling other services, created on first use (a service
 * that never calls search holds no connection to it): in-process for the
 * services `local` hosts, over grpc-js to CHIRP_<SERVICE>_ADDR for the rest.
 */
export function createMeshClients(addresses: Readonly<Record<ServiceName, string>>, metrics?: Metrics, local?: InProcessServices): MeshClients {
  const transports: Array<{ close(): void }> = [];
  const made = new Map<ServiceName, unknown>();
  const get = <S extends ServiceName>(name: S): Client<(typeof DESCRIPTORS)[S]> => {
    let client = made.get(name) as Client<(typeof DESCRIPTORS)[S]> | undefined;
    if (client === undefined) {
      const descriptor = DESCRIPTORS[name];
      if (local?.hosts(descriptor) === true) client = createClient(descriptor, local.transport());
      else {
        const transport = createGrpcTransport({ target: addresses[name], ...(metrics ? { metrics } : {}) });
        transports.push(transport);
        client = createClient(descriptor, transport);
      }
      made.set(name, client);
    }
    return client;
  };
  return {
    get user() {
      return get("user");
    },
    get graph() {
      return get("graph");
    },
    get tweet() {
      return get("tweet");
    },
    get timeline() {
      return get("timeline");
    },
    get search() {
      return get("search");
    },
    get media() {
      return get("media");
    },
    get notification() {
      return get("notification");
    },
    close() {
      for (const t of transports) t.close();
    },
  };
}

/**
 * Call options for a hop made on behalf of the request in `ctx`: the same
 * request id, the gateway's assertion of its caller passed on unchanged (a
 * service cannot make one: decision 22; the method called must be one of
 * rpc/callers.ts ON_BEHALF_METHODS), the remaining deadline, and
 * cancellation with it.
 */
export function onBehalfOf(ctx: HandlerContext): CallOptions {
  const headers = new Headers();
  const requestId = ctx.requestHeader.get(REQUEST_ID_HEADER);
  if (requestId !== null) headers.set(REQUEST_ID_HEADER, requestId);
  const assertion = ctx.requestHeader.get(ASSERTION_HEADER);
  if (assertion !== null) headers.set(ASSERTION_HEADER, assertion);
  const timeoutMs = ctx.timeoutMs();
  return { headers, signal: ctx.signal, ...(timeoutMs === undefined ? {} : { timeoutMs }) };
}

/**
 * Whether a user exists, answered one way everywhere: the user service's
 * BatchGetUsers (its profile cache, then the user's primary for a miss, so an
 * account created a moment ago is found). Users are the user service's rows;
 * no other service reads them.
 */
export async function userExists(clients: Pick<MeshClients, "user">, userId: bigint, options: CallOptions): Promise<boolean> {
  const { users } = await clients.user.batchGetUsers({ userIds: [userId] }, options);
  return users.length > 0;
}
