import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createValidator, type Validator } from "@bufbuild/protovalidate";

let shared: Validator | undefined;

/**
 * Enforces the protovalidate rules written in the proto files. Every request
 * passes through here before a handler runs, so handlers only check what the
 * proto cannot say (existence, permissions, cross-field rules).
 */
export function validateRequest<D extends DescMessage>(schema: D, message: MessageShape<D>): void {
  shared ??= createValidator();
  const result = shared.validate(schema, message);
  if (result.kind === "valid") return;
  if (result.kind === "invalid") {
    // Violation messages name the field and the rule, never the offending value.
    const text = result.violations.map((v) => v.toString()).join("; ");
    throw new ConnectError(text, Code.InvalidArgument);
  }
  throw new ConnectError("request validation failed", Code.Internal, undefined, undefined, result.error);
}
