import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import type { DescService } from "@bufbuild/protobuf";
import { GraphService } from "../../gen/chirp/graph/v1/graph_service_pb.js";
import { MediaService } from "../../gen/chirp/media/v1/media_service_pb.js";
import { SearchService } from "../../gen/chirp/search/v1/search_service_pb.js";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";

const MESH_SERVICES: readonly DescService[] = [UserService, GraphService, TweetService, TimelineService, SearchService, MediaService];

/**
 * The mesh's methods that must not be sent again once an instance may have
 * run them: every method whose proto does not declare it NO_SIDE_EFFECTS or
 * IDEMPOTENT (PostTweet, SignUp, Upload, ...). As grpc service config names.
 *
 * Why: an instance killed while it handles a call cuts the connection, and
 * grpc-js reports that as UNAVAILABLE, the very code a retry policy repeats;
 * a PostTweet whose transaction had committed was then posted again by the
 * other instance (found by test/chaos/process-faults.test.ts: the author's
 * timeline held the text twice). Without a retry policy grpc-js still repeats
 * a call that never reached the service's code (not sent, or refused by a
 * server that is shutting down), which is always safe.
 */
export function unrepeatableMethods(services: readonly DescService[] = MESH_SERVICES): Array<{ service: string; method: string }> {
  return services.flatMap((s) =>
    s.methods
      .filter((m) => m.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN)
      .map((m) => ({ service: s.typeName, method: m.name })),
  );
}
