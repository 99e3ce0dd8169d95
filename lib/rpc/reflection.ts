import { fromBinary, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type DescriptorProto } from "@bufbuild/protobuf/wkt";
import { loadSync, type MessageTypeDefinition, type PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";

/**
 * Server reflection (grpc.reflection.v1 and v1alpha) for the given services plus
 * grpc.health.v1, so `buf curl` and grpcurl work against a service without proto
 * files. @grpc/reflection reads serialized FileDescriptorProtos from a
 * proto-loader package definition; protobuf-es already embeds every generated
 * file's descriptor, so we hand those over instead of re-parsing .proto sources.
 */
export function createReflectionService(services: readonly DescService[]): ReflectionService {
  const files = new Map<string, Buffer>();
  const visit = (file: DescFile): void => {
    if (files.has(file.proto.name)) return;
    files.set(file.proto.name, Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
    for (const dep of file.dependencies) visit(dep);
  };
  for (const service of services) visit(service.file);

  files.set(HEALTH_FILE, healthDescriptor());

  const definition: PackageDefinition = {
    "chirp.reflection.descriptors": {
      format: "Protocol Buffer 3 DescriptorProto",
      type: {},
      fileDescriptorProtos: [...files.values()],
      // Only the descriptors are read; this entry is never used to (de)serialize.
      serialize: () => Buffer.alloc(0),
      deserialize: () => ({}),
    },
  };
  return new ReflectionService(definition, {
    services: [...services.map((s) => s.typeName), "grpc.health.v1.Health"],
  });
}

// The canonical name: tools such as buf link their own copy of the health
// schema under this name and reject the same symbols arriving in another file.
const HEALTH_FILE = "grpc/health/v1/health.proto";

let health: Buffer | undefined;
function healthDescriptor(): Buffer {
  if (health === undefined) {
    const loaded = loadSync(healthProtoPath)["grpc.health.v1.HealthCheckRequest"] as MessageTypeDefinition<object, object> | undefined;
    const bytes = loaded?.fileDescriptorProtos[0];
    if (bytes === undefined) throw new Error("grpc-health-check ships no health.proto descriptor");
    const file = fromBinary(FileDescriptorProtoSchema, bytes);
    file.name = HEALTH_FILE;
    fixMapEntryNames(file.messageType);
    health = Buffer.from(toBinary(FileDescriptorProtoSchema, file));
  }
  return health;
}

/**
 * protobufjs names a map field's synthetic entry message after the field
 * ("Statuses") where protoc names it "StatusesEntry"; strict descriptor
 * validators (Go's protodesc, used by buf) reject the former.
 */
function fixMapEntryNames(messages: DescriptorProto[]): void {
  for (const message of messages) {
    for (const nested of message.nestedType) {
      if (nested.options?.mapEntry !== true || nested.name.endsWith("Entry")) continue;
      const old = nested.name;
      nested.name = `${old}Entry`;
      for (const field of message.field) {
        if (field.typeName === old || field.typeName.endsWith(`.${old}`)) field.typeName = `${field.typeName}Entry`;
      }
    }
    fixMapEntryNames(message.nestedType);
  }
}
