/**
 * Pieces shared by the RPC overhead benchmark's driver (bench/rpc-overhead.ts)
 * and its server child (bench/rpc-overhead-server.ts): the one RPC that every
 * pair exchanges, the handler all servers run, and the IPC messages.
 */
import { create } from "@bufbuild/protobuf";
import {
  GetUserRequestSchema,
  GetUserResponseSchema,
  type GetUserRequest,
  type GetUserResponse,
} from "../gen/chirp/user/v1/user_service_pb.js";

export type ServerKind = "grpc-js" | "connect-node" | "node-http";
export const SERVER_KINDS: readonly ServerKind[] = ["grpc-js", "connect-node", "node-http"];

/** The node:http floor serves the protobuf bytes on the same path a gRPC server would. */
export const GET_USER_PATH = "/chirp.user.v1.UserService/GetUser";

export const USER_ID = 1n;

export function makeRequest(): GetUserRequest {
  return create(GetUserRequestSchema, { lookup: { case: "userId", value: USER_ID } });
}

/**
 * The handler every server runs: builds a small profile (~100 bytes encoded)
 * for the requested id. No I/O, so what is left is the RPC stack's own cost.
 */
export function getUser(request: GetUserRequest): GetUserResponse {
  const id = request.lookup.case === "userId" ? request.lookup.value : 0n;
  return create(GetUserResponseSchema, {
    user: {
      id,
      handle: "benchmark_user",
      displayName: "Benchmark User",
      bio: "Posts about RPC overhead, HTTP/2 framing and protobuf wire formats. Opinions are the CPU's own.",
      followerCount: 1234,
      followingCount: 321,
      tweetCount: 4567,
    },
  });
}

/** Messages from the driver to a server child. */
export type ToServer = { readonly type: "start" } | { readonly type: "stop" } | { readonly type: "shutdown" };

/** Messages from a server child to the driver. CPU figures are microseconds, as process.cpuUsage() gives them. */
export type FromServer =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "started" }
  | { readonly type: "stopped"; readonly userMicros: number; readonly systemMicros: number }
  | { readonly type: "error"; readonly message: string };
