import type { DescMessage, DescMethod, DescService, MessageShape } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { codecFor } from "../proto-codec.js";

/**
 * grpc-js speaks HTTP/2 and framing; protobuf-es owns the messages. This turns a
 * protobuf-es service descriptor into the grpc-js definition that joins the two,
 * so both sides of every internal hop use the generated types. Messages go to
 * and from bytes through the compiled codec (lib/proto-codec.ts: protobuf-es's
 * bytes and messages, several times faster than its reflective toBinary).
 */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = grpcMethodDefinition(method) as MethodDefinition<unknown, unknown>;
  }
  return definition as ServiceDefinition;
}

export function grpcMethodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

const definitions = new WeakMap<DescMethod, MethodDefinition<unknown, unknown>>();

/** The method's grpc-js definition, made once per method (every call of it asks). */
export function grpcMethodDefinition<I extends DescMessage, O extends DescMessage>(
  method: DescMethod & { input: I; output: O },
): MethodDefinition<MessageShape<I>, MessageShape<O>> {
  let def = definitions.get(method);
  if (def === undefined) {
    def = methodDefinition(method) as MethodDefinition<unknown, unknown>;
    definitions.set(method, def);
  }
  return def as MethodDefinition<MessageShape<I>, MessageShape<O>>;
}

function methodDefinition<I extends DescMessage, O extends DescMessage>(
  method: DescMethod & { input: I; output: O },
): MethodDefinition<MessageShape<I>, MessageShape<O>> {
  const input = codecFor(method.input);
  const output = codecFor(method.output);
  return {
    path: grpcMethodPath(method),
    originalName: method.name,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (message) => input.encode(message),
    requestDeserialize: (bytes) => input.decode(bytes),
    responseSerialize: (message) => output.encode(message),
    responseDeserialize: (bytes) => output.decode(bytes),
  };
}
