import type { DescService } from "@bufbuild/protobuf";
import { GraphService } from "../gen/chirp/graph/v1/graph_service_pb.js";
import { MediaService } from "../gen/chirp/media/v1/media_service_pb.js";
import { NotificationService } from "../gen/chirp/notification/v1/notification_service_pb.js";
import { SearchService } from "../gen/chirp/search/v1/search_service_pb.js";
import { TimelineService } from "../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetService } from "../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserService } from "../gen/chirp/user/v1/user_service_pb.js";
import type { ServiceName } from "../lib/mesh.js";
import type { RateClass } from "./rate-limit.js";

export interface PublicService {
  /** The mesh service that implements it. */
  readonly backend: ServiceName;
  readonly service: DescService;
  /** The methods the gateway forwards; the rest (BatchGet*, ListFollowerIds, Upload, ...) stay inside the mesh. */
  readonly methods: readonly string[];
}

/** The public API contract of ARCHITECTURE.md section 3, and nothing more. */
export const PUBLIC_API: readonly PublicService[] = [
  { backend: "user", service: UserService, methods: ["SignUp", "LogIn", "GetUser", "UpdateProfile", "LogOut", "ChangePassword", "ListSessions", "RevokeSession", "DeleteAccount"] },
  {
    backend: "graph",
    service: GraphService,
    methods: ["Follow", "Unfollow", "ListFollowers", "ListFollowing", "Block", "Unblock", "ListBlocked", "Mute", "Unmute", "ListMuted"],
  },
  {
    backend: "tweet",
    service: TweetService,
    methods: ["PostTweet", "GetTweet", "DeleteTweet", "LikeTweet", "UnlikeTweet", "ListLikedTweets", "GetThread", "Repost", "Unrepost"],
  },
  { backend: "timeline", service: TimelineService, methods: ["GetHomeTimeline", "GetUserTimeline", "StreamEvents"] },
  { backend: "search", service: SearchService, methods: ["SearchTweets", "GetTrends"] },
  { backend: "media", service: MediaService, methods: ["GetMedia"] },
  {
    backend: "notification",
    service: NotificationService,
    methods: ["ListNotifications", "GetUnreadCount", "MarkRead", "GetPushConfig", "RegisterPush", "UnregisterPush"],
  },
];

/**
 * The rate-limit class of each public method that is not a read: the ones
 * that change something, and the two that check a password. Everything else,
 * opening an event stream included, is a read.
 */
const NOT_READS: Readonly<Record<string, RateClass>> = {
  "UserService/SignUp": "auth",
  "UserService/LogIn": "auth",
  "UserService/UpdateProfile": "write",
  "UserService/ChangePassword": "auth",
  "UserService/LogOut": "write",
  "UserService/RevokeSession": "write",
  "UserService/DeleteAccount": "auth",
  "GraphService/Follow": "write",
  "GraphService/Unfollow": "write",
  "GraphService/Block": "write",
  "GraphService/Unblock": "write",
  "GraphService/Mute": "write",
  "GraphService/Unmute": "write",
  "TweetService/PostTweet": "write",
  "TweetService/DeleteTweet": "write",
  "TweetService/LikeTweet": "write",
  "TweetService/UnlikeTweet": "write",
  "TweetService/Repost": "write",
  "TweetService/Unrepost": "write",
  "NotificationService/MarkRead": "write",
  "NotificationService/RegisterPush": "write",
  "NotificationService/UnregisterPush": "write",
};

export function rateClassOf(service: DescService, method: string): RateClass {
  return NOT_READS[`${service.name}/${method}`] ?? "read";
}
