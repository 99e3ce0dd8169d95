import type { DescMessage } from "@bufbuild/protobuf";
import { UserBlockedSchema, UserFollowedSchema, UserUnblockedSchema, UserUnfollowedSchema } from "../../gen/chirp/graph/v1/events_pb.js";
import { MediaUploadedSchema } from "../../gen/chirp/media/v1/events_pb.js";
import { NotificationCreatedSchema } from "../../gen/chirp/notification/v1/events_pb.js";
import { TweetCreatedSchema, TweetDeletedSchema, TweetLikedSchema, TweetQuotedSchema, TweetRepliedSchema, TweetRepostedSchema, TweetUnlikedSchema, TweetUnrepostedSchema } from "../../gen/chirp/tweet/v1/events_pb.js";
import { ProfileUpdatedSchema, UserCreatedSchema, UserDeletedSchema } from "../../gen/chirp/user/v1/events_pb.js";

/**
 * Every event subject, `chirp.<domain>.v1.<event>`, with the protobuf message
 * its payload holds. Publishers and consumers take both from here, so a
 * subject can never be paired with the wrong schema.
 */
export const EVENTS = {
  userCreated: { subject: "chirp.user.v1.user_created", schema: UserCreatedSchema },
  profileUpdated: { subject: "chirp.user.v1.profile_updated", schema: ProfileUpdatedSchema },
  userDeleted: { subject: "chirp.user.v1.user_deleted", schema: UserDeletedSchema },
  userFollowed: { subject: "chirp.graph.v1.user_followed", schema: UserFollowedSchema },
  userUnfollowed: { subject: "chirp.graph.v1.user_unfollowed", schema: UserUnfollowedSchema },
  userBlocked: { subject: "chirp.graph.v1.user_blocked", schema: UserBlockedSchema },
  userUnblocked: { subject: "chirp.graph.v1.user_unblocked", schema: UserUnblockedSchema },
  tweetCreated: { subject: "chirp.tweet.v1.tweet_created", schema: TweetCreatedSchema },
  tweetDeleted: { subject: "chirp.tweet.v1.tweet_deleted", schema: TweetDeletedSchema },
  tweetLiked: { subject: "chirp.tweet.v1.tweet_liked", schema: TweetLikedSchema },
  tweetUnliked: { subject: "chirp.tweet.v1.tweet_unliked", schema: TweetUnlikedSchema },
  tweetReplied: { subject: "chirp.tweet.v1.tweet_replied", schema: TweetRepliedSchema },
  tweetQuoted: { subject: "chirp.tweet.v1.tweet_quoted", schema: TweetQuotedSchema },
  tweetReposted: { subject: "chirp.tweet.v1.tweet_reposted", schema: TweetRepostedSchema },
  tweetUnreposted: { subject: "chirp.tweet.v1.tweet_unreposted", schema: TweetUnrepostedSchema },
  mediaUploaded: { subject: "chirp.media.v1.media_uploaded", schema: MediaUploadedSchema },
  notificationCreated: { subject: "chirp.notification.v1.notification_created", schema: NotificationCreatedSchema },
} as const satisfies Record<string, EventType>;

export interface EventType<D extends DescMessage = DescMessage> {
  readonly subject: string;
  readonly schema: D;
}

/** The JetStream stream that holds every event subject. */
export const EVENT_STREAM = "CHIRP_EVENTS";
export const EVENT_SUBJECTS = "chirp.*.v1.*";

/**
 * Live-only copies of events: published with core NATS once their change has
 * committed, for whoever is subscribed at that moment (StreamEvents), at most
 * once, never stored. Each subject is its event's with one more token, so it
 * is outside EVENT_SUBJECTS and the stream does not hold it.
 */
export const LIVE_EVENTS = {
  notificationCreated: { subject: `${EVENTS.notificationCreated.subject}.live`, schema: NotificationCreatedSchema },
} as const satisfies Record<string, EventType>;
