// google.rpc.RetryInfo, the standard error detail that tells a client how long
// to wait before trying again, attached to the gateway's ResourceExhausted
// answers. The project generates no google/rpc protos, so its descriptor is
// built here from the one message it needs (wire-identical to the real one).
import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_duration,
} from "@bufbuild/protobuf/wkt";

const file = create(FileDescriptorProtoSchema, {
  name: "google/rpc/error_details.proto",
  package: "google.rpc",
  syntax: "proto3",
  dependency: ["google/protobuf/duration.proto"],
  messageType: [
    {
      name: "RetryInfo",
      field: [
        {
          name: "retry_delay",
          jsonName: "retryDelay",
          number: 1,
          label: FieldDescriptorProto_Label.OPTIONAL,
          type: FieldDescriptorProto_Type.MESSAGE,
          typeName: ".google.protobuf.Duration",
        },
      ],
    },
  ],
});

const registry = createFileRegistry(file, (name) => (name === "google/protobuf/duration.proto" ? file_google_protobuf_duration : undefined));

export const RetryInfoSchema: DescMessage = registry.getMessage("google.rpc.RetryInfo")!;

/** The error detail saying "retry after `ms` milliseconds". */
export function retryInfo(ms: number): { desc: DescMessage; value: Record<string, unknown> } {
  const seconds = Math.floor(ms / 1000);
  return { desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(seconds), nanos: (ms - seconds * 1000) * 1_000_000 } } };
}
