import type { DescService } from "@bufbuild/protobuf";
import { GraphService } from "../gen/chirp/graph/v1/graph_service_pb.js";
import { MediaService } from "../gen/chirp/media/v1/media_service_pb.js";
import { SearchService } from "../gen/chirp/search/v1/search_service_pb.js";
import { TimelineService } from "../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetService } from "../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserService } from "../gen/chirp/user/v1/user_service_pb.js";
import type { ServiceName } from "../services/lib/mesh.js";

export interface PublicService {
  /** The mesh service that implements it. */
  readonly backend: ServiceName;
  readonly service: DescService;
  /** The methods the gateway forwards; the rest (BatchGet*, Upload) stay inside the mesh. */
  readonly methods: readonly string[];
}

/** The public API contract of ARCHITECTURE.md section 3, and nothing more. */
export const PUBLIC_API: readonly PublicService[] = [
  { backend: "user", service: UserService, methods: ["SignUp", "LogIn", "GetUser", "UpdateProfile"] },
  { backend: "graph", service: GraphService, methods: ["Follow", "Unfollow", "ListFollowers", "ListFollowing"] },
  {
    backend: "tweet",
    service: TweetService,
    methods: ["PostTweet", "GetTweet", "DeleteTweet", "LikeTweet", "UnlikeTweet", "ListLikedTweets"],
  },
  { backend: "timeline", service: TimelineService, methods: ["GetHomeTimeline", "GetUserTimeline", "StreamEvents"] },
  { backend: "search", service: SearchService, methods: ["SearchTweets", "GetTrends"] },
  { backend: "media", service: MediaService, methods: ["GetMedia"] },
];
