// The protovalidate rules written in proto/ must reach the runtime validator:
// buf compiles them against our exported third_party validate.proto, and
// @bufbuild/protovalidate reads them with its own embedded copy. These tests
// would catch the two drifting apart.

import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { createValidator } from "@bufbuild/protovalidate";
import { file_buf_validate_validate } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { describe, expect, it } from "vitest";
import { ListFollowersRequestSchema } from "../../gen/chirp/graph/v1/graph_service_pb.js";
import { UploadRequestSchema } from "../../gen/chirp/media/v1/media_service_pb.js";
import { ListNotificationsRequestSchema, RegisterPushRequestSchema } from "../../gen/chirp/notification/v1/notification_service_pb.js";
import { GetTrendsRequestSchema, SearchTweetsRequestSchema } from "../../gen/chirp/search/v1/search_service_pb.js";
import { PostTweetRequestSchema } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import {
  GetUserRequestSchema,
  SignUpRequestSchema,
  UpdateProfileRequestSchema,
} from "../../gen/chirp/user/v1/user_service_pb.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const validator = createValidator();

/** Validates and returns "field: rule id" for each violation; [] when valid. */
function violations<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): string[] {
  const result = validator.validate(schema, message);
  if (result.kind === "error") {
    throw result.error;
  }
  return (result.violations ?? []).map((v) => `${pathToString(v.field)}: ${v.ruleId}`);
}

const validSignUp = {
  handle: "ada_99",
  displayName: "Ada",
  email: "ada@example.com",
  password: "correct horse",
};

describe("protovalidate rules in generated code", () => {
  it("accepts a well-formed sign-up", () => {
    expect(violations(SignUpRequestSchema, create(SignUpRequestSchema, validSignUp))).toEqual([]);
  });

  it("rejects a handle longer than 15 characters or with other characters", () => {
    const tooLong = create(SignUpRequestSchema, { ...validSignUp, handle: "a".repeat(16) });
    expect(violations(SignUpRequestSchema, tooLong)).toEqual(["handle: string.pattern"]);
    const badChar = create(SignUpRequestSchema, { ...validSignUp, handle: "ada-99" });
    expect(violations(SignUpRequestSchema, badChar)).toEqual(["handle: string.pattern"]);
  });

  it("checks email, password length and display name length", () => {
    const bad = create(SignUpRequestSchema, {
      handle: "ada",
      displayName: "x".repeat(51),
      email: "not an email",
      password: "short",
    });
    expect(violations(SignUpRequestSchema, bad).sort()).toEqual([
      "display_name: string.max_len",
      "email: string.email",
      "password: string.min_len",
    ]);
  });

  it("counts characters, not bytes, for length rules", () => {
    const bio = create(UpdateProfileRequestSchema, { bio: "é".repeat(160) });
    expect(violations(UpdateProfileRequestSchema, bio)).toEqual([]);
    const tooLong = create(UpdateProfileRequestSchema, { bio: "é".repeat(161) });
    expect(violations(UpdateProfileRequestSchema, tooLong)).toEqual(["bio: string.max_len"]);
  });

  it("requires exactly one of user_id or handle in GetUser", () => {
    expect(violations(GetUserRequestSchema, create(GetUserRequestSchema))).toEqual(["lookup: required"]);
    const zero = create(GetUserRequestSchema, { lookup: { case: "userId", value: 0n } });
    expect(violations(GetUserRequestSchema, zero)).toEqual(["user_id: uint64.gt"]);
    const byHandle = create(GetUserRequestSchema, { lookup: { case: "handle", value: "ada" } });
    expect(violations(GetUserRequestSchema, byHandle)).toEqual([]);
  });

  it("bounds page_size to 0..100 and requires a user id in lists", () => {
    const bad = create(ListFollowersRequestSchema, { userId: 0n, pageSize: 101 });
    expect(violations(ListFollowersRequestSchema, bad).sort()).toEqual([
      "page_size: int32.gte_lte",
      "user_id: uint64.gt",
    ]);
    const ok = create(ListFollowersRequestSchema, { userId: 7n, pageSize: 0 });
    expect(violations(ListFollowersRequestSchema, ok)).toEqual([]);
  });

  it("bounds the notification page and requires a push subscription's parts", () => {
    const bad = create(ListNotificationsRequestSchema, { pageSize: 101, pageToken: "x".repeat(1025) });
    expect(violations(ListNotificationsRequestSchema, bad).sort()).toEqual(["page_size: int32.gte_lte", "page_token: string.max_len"]);
    expect(violations(ListNotificationsRequestSchema, create(ListNotificationsRequestSchema, { grouped: true }))).toEqual([]);
    expect(violations(RegisterPushRequestSchema, create(RegisterPushRequestSchema)).sort()).toEqual([
      "auth: string.min_len",
      "endpoint: string.min_len",
      "p256dh: string.min_len",
    ]);
  });

  it("checks tweet text length, media count and location bounds", () => {
    // The proto caps code points (2800: ten per character for emoji sequences);
    // the tweet service counts the 280 user-perceived characters after NFC.
    const bad = create(PostTweetRequestSchema, {
      text: "x".repeat(2801),
      mediaIds: [1n, 2n, 3n, 4n, 5n],
      location: { latitude: 91, longitude: -181 },
    });
    expect(violations(PostTweetRequestSchema, bad).sort()).toEqual([
      "location.latitude: double.gte_lte",
      "location.longitude: double.gte_lte",
      "media_ids: repeated.max_items",
      "text: string.max_len",
    ]);
    const ok = create(PostTweetRequestSchema, { text: "x".repeat(2800), mediaIds: [1n, 2n, 3n, 4n] });
    expect(violations(PostTweetRequestSchema, ok)).toEqual([]);
  });

  it("checks search query length and trends limit", () => {
    expect(violations(SearchTweetsRequestSchema, create(SearchTweetsRequestSchema))).toEqual([
      "query: string.min_len",
    ]);
    expect(violations(GetTrendsRequestSchema, create(GetTrendsRequestSchema, { limit: 51 }))).toEqual([
      "limit: int32.gte_lte",
    ]);
  });

  it("requires each upload message to carry metadata or a chunk", () => {
    expect(violations(UploadRequestSchema, create(UploadRequestSchema))).toEqual(["part: required"]);
    const chunk = create(UploadRequestSchema, { part: { case: "chunk", value: new Uint8Array(3) } });
    expect(violations(UploadRequestSchema, chunk)).toEqual([]);
  });
});

describe("third_party/proto/buf/validate/validate.proto", () => {
  it("compiles to the descriptor @bufbuild/protovalidate embeds, apart from its own options", () => {
    const image = execFileSync(
      join(repoRoot, "node_modules", ".bin", "buf"),
      [
        "build",
        "--path",
        "third_party/proto/buf/validate/validate.proto",
        "--exclude-imports",
        "--exclude-source-info",
        "-o",
        "-#format=binpb",
      ],
      { cwd: repoRoot },
    );
    const built = fromBinary(FileDescriptorSetSchema, image).file;
    expect(built.map((f) => f.name)).toEqual(["buf/validate/validate.proto"]);
    // JSON drops unknown fields, i.e. the CEL annotations (extension 1160) that
    // the export leaves out; the empty options objects they leave are dropped too.
    const normalize = (json: unknown): string =>
      JSON.stringify(json, (key, value: unknown) =>
        key === "options" && typeof value === "object" && value !== null && Object.keys(value).length === 0
          ? undefined
          : value,
      );
    expect(normalize(toJson(FileDescriptorProtoSchema, built[0]!))).toEqual(
      normalize(toJson(FileDescriptorProtoSchema, file_buf_validate_validate.proto)),
    );
  });
});
