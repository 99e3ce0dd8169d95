// Protobuf JSON for the gateway's answers, without protobuf-es's reflection.
//
// protobuf-es's toJson walks every message through its reflection API and
// builds a JSON object tree that JSON.stringify then walks again: on a home
// timeline page (ten tweets, their authors, timestamps) that was 7.6 % of the
// single process's CPU. This compiles, once per message type, a function that
// writes the same JSON text straight from the message: the fields in field
// number order, each under its JSON name, with the value protobuf-es would
// write. The gateway's options are fixed (rpc-adapter.ts): every implicit
// field is written (`alwaysEmitImplicit`), enums by name, no extension
// registry. The text is byte for byte what
// `toJsonString(schema, message, { alwaysEmitImplicit: true })` gives
// (fast-json.test.ts compares them on every public response type).
//
// Only what the public responses use is compiled: scalars, enums, nested
// messages, repeated fields, google.protobuf.Timestamp and Duration. A type
// with a oneof, a map or another well-known type gets no encoder (undefined),
// and its answers keep the generic path. A value protobuf-es would refuse
// (a wrong type, a timestamp out of range) makes the encoder throw, and the
// caller then falls back to the generic encoder, which answers as it always
// did.
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";

/** A message of the type it was compiled for, as JSON text. Throws where protobuf-es's toJson would, or might. */
export type JsonEncoder = (message: unknown) => string;

type ValueEncoder = (value: unknown) => string;

class Unsupported extends Error {}

/** The encoder of `desc`'s messages, or undefined when the type uses what this does not compile. */
export function compileJsonEncoder(desc: DescMessage): JsonEncoder | undefined {
  try {
    return messageEncoder(desc, new Map());
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
}

function messageEncoder(desc: DescMessage, compiled: Map<DescMessage, ValueEncoder>): ValueEncoder {
  const known = compiled.get(desc);
  if (known !== undefined) return known;
  if (desc.typeName === "google.protobuf.Timestamp") return timestampJson;
  if (desc.typeName === "google.protobuf.Duration") return durationJson;
  if (desc.typeName.startsWith("google.protobuf.")) throw new Unsupported(desc.typeName);
  if (desc.oneofs.length > 0) throw new Unsupported(`${desc.typeName} has a oneof`);
  const typeName = desc.typeName;
  const fields: Array<(m: Record<string, unknown>) => string | undefined> = [];
  const encode: ValueEncoder = (value) => {
    const m = messageOf(value, typeName);
    let out = "{";
    for (let i = 0; i < fields.length; i++) {
      const part = fields[i]!(m);
      if (part === undefined) continue;
      out += out.length === 1 ? part : "," + part;
    }
    return out + "}";
  };
  // Set before the fields are compiled: a type may contain itself (a tweet quotes a tweet).
  compiled.set(desc, encode);
  const sorted = [...desc.fields].sort((a, b) => a.number - b.number);
  for (const f of sorted) fields.push(fieldEncoder(f, compiled));
  return encode;
}

// protobuf-es's FeatureSet_FieldPresence.IMPLICIT.
const IMPLICIT = 2;

function fieldEncoder(f: DescField, compiled: Map<DescMessage, ValueEncoder>): (m: Record<string, unknown>) => string | undefined {
  const key = JSON.stringify(f.jsonName) + ":";
  const name = f.localName;
  if (f.fieldKind === "map") throw new Unsupported(`${f.parent.typeName}.${f.name} is a map`);
  if (f.fieldKind === "list") {
    const item = f.listKind === "message" ? messageEncoder(f.message, compiled) : f.listKind === "enum" ? enumEncoder(f.enum) : scalarEncoder(f.scalar);
    return (m) => {
      const list = m[name];
      if (!Array.isArray(list)) throw new Error(`cannot encode ${f.parent.typeName}.${f.name} to JSON: not a list`);
      let out = key + "[";
      for (let i = 0; i < list.length; i++) out += (i === 0 ? "" : ",") + item(list[i]);
      return out + "]";
    };
  }
  const value = f.fieldKind === "message" ? messageEncoder(f.message, compiled) : f.fieldKind === "enum" ? enumEncoder(f.enum) : scalarEncoder(f.scalar);
  if (f.presence === IMPLICIT) return (m) => key + value(m[name]);
  // Explicit presence (message fields, proto3 `optional`): written only when set, as protobuf-es's isFieldSet says.
  return (m) => {
    const v = m[name];
    return v === undefined || !Object.prototype.hasOwnProperty.call(m, name) ? undefined : key + value(v);
  };
}

function messageOf(value: unknown, typeName: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || (value as { $typeName?: unknown }).$typeName !== typeName) {
    throw new Error(`cannot encode ${typeName} to JSON: not a ${typeName} message`);
  }
  return value as Record<string, unknown>;
}

function enumEncoder(desc: DescEnum): ValueEncoder {
  if (desc.typeName === "google.protobuf.NullValue") throw new Unsupported(desc.typeName);
  const names = new Map(desc.values.map((v) => [v.number, JSON.stringify(v.name)]));
  return (value) => {
    if (typeof value !== "number") throw new Error(`cannot encode ${desc.typeName} to JSON: not a number`);
    // A number the enum does not name is written as the number, as protobuf-es does.
    return names.get(value) ?? numberJson(value);
  };
}

/** A number as JSON.stringify writes it (non-finite numbers as null). */
function numberJson(value: number): string {
  return Number.isFinite(value) ? String(value) : "null";
}

function scalarEncoder(type: ScalarType): ValueEncoder {
  switch (type) {
    case ScalarType.INT32:
    case ScalarType.SFIXED32:
    case ScalarType.SINT32:
    case ScalarType.FIXED32:
    case ScalarType.UINT32:
      return (v) => {
        if (typeof v !== "number") throw new Error("cannot encode a 32-bit integer to JSON: not a number");
        return numberJson(v);
      };
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return (v) => {
        if (typeof v !== "number") throw new Error("cannot encode a float to JSON: not a number");
        if (Number.isNaN(v)) return '"NaN"';
        if (v === Number.POSITIVE_INFINITY) return '"Infinity"';
        if (v === Number.NEGATIVE_INFINITY) return '"-Infinity"';
        return String(v);
      };
    case ScalarType.STRING:
      return (v) => {
        if (typeof v !== "string") throw new Error("cannot encode a string to JSON: not a string");
        return JSON.stringify(v);
      };
    case ScalarType.BOOL:
      return (v) => {
        if (typeof v !== "boolean") throw new Error("cannot encode a bool to JSON: not a boolean");
        return v ? "true" : "false";
      };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
    case ScalarType.INT64:
    case ScalarType.SFIXED64:
    case ScalarType.SINT64:
      // 64-bit integers are strings in protobuf JSON.
      return (v) => {
        if (typeof v === "bigint") return '"' + v.toString() + '"';
        if (typeof v === "string" || (typeof v === "number" && Number.isInteger(v))) return JSON.stringify(v.toString());
        throw new Error("cannot encode a 64-bit integer to JSON: not an integer");
      };
    case ScalarType.BYTES:
      return (v) => {
        if (!(v instanceof Uint8Array)) throw new Error("cannot encode bytes to JSON: not a Uint8Array");
        return JSON.stringify(base64Encode(v));
      };
    default:
      throw new Unsupported(`scalar type ${String(type)}`);
  }
}

/**
 * "YYYY-MM-DDTHH:mm:ss" by whole second: a page shows the same tweets' and
 * authors' times read after read, and Date's formatting was a fifth of the
 * encoder's time. Bounded: emptied when full.
 */
const secondsText = new Map<number, string>();
const SECONDS_TEXT_MAX = 50_000;

function isoSeconds(ms: number): string {
  let text = secondsText.get(ms);
  if (text === undefined) {
    // Whole seconds in 0001-9999: always "YYYY-MM-DDTHH:mm:ss.000Z".
    text = new Date(ms).toISOString().slice(0, -5);
    if (secondsText.size >= SECONDS_TEXT_MAX) secondsText.clear();
    secondsText.set(ms, text);
  }
  return text;
}

const MIN_TIMESTAMP_MS = Date.parse("0001-01-01T00:00:00Z");
const MAX_TIMESTAMP_MS = Date.parse("9999-12-31T23:59:59Z");

/**
 * Each Timestamp object's text with the fields it was made from: a page's
 * tweets and authors are the same decoded objects read after read
 * (lib/decoded-memo.ts), so their times are written once. Exact by
 * construction: the text is reused only while both fields are unchanged.
 */
const timestampTexts = new WeakMap<object, { readonly seconds: bigint; readonly nanos: number; readonly text: string }>();

/** google.protobuf.Timestamp as protobuf-es writes it (RFC 3339, UTC, 0, 3, 6 or 9 digits of fraction). */
function timestampJson(value: unknown): string {
  const t = messageOf(value, "google.protobuf.Timestamp") as { seconds: unknown; nanos: unknown };
  const known = timestampTexts.get(t);
  if (known !== undefined && known.seconds === t.seconds && known.nanos === t.nanos) return known.text;
  if (typeof t.seconds !== "bigint" || typeof t.nanos !== "number") throw new Error("cannot encode google.protobuf.Timestamp to JSON: bad fields");
  const ms = Number(t.seconds) * 1000;
  if (ms < MIN_TIMESTAMP_MS || ms > MAX_TIMESTAMP_MS || t.nanos < 0 || t.nanos > 999_999_999) {
    throw new Error("cannot encode google.protobuf.Timestamp to JSON: out of range");
  }
  let z = "Z";
  if (t.nanos > 0) {
    const digits = (t.nanos + 1_000_000_000).toString().substring(1);
    if (digits.substring(3) === "000000") z = "." + digits.substring(0, 3) + "Z";
    else if (digits.substring(6) === "000") z = "." + digits.substring(0, 6) + "Z";
    else z = "." + digits + "Z";
  }
  const text = '"' + isoSeconds(ms) + z + '"';
  timestampTexts.set(t, { seconds: t.seconds, nanos: t.nanos, text });
  return text;
}

/** google.protobuf.Duration as protobuf-es writes it ("1.5s"). */
function durationJson(value: unknown): string {
  const d = messageOf(value, "google.protobuf.Duration") as { seconds: unknown; nanos: unknown };
  if (typeof d.seconds !== "bigint" || typeof d.nanos !== "number") throw new Error("cannot encode google.protobuf.Duration to JSON: bad fields");
  const seconds = Number(d.seconds);
  const nanos = d.nanos;
  if (seconds > 315_576_000_000 || seconds < -315_576_000_000 || (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
    throw new Error("cannot encode google.protobuf.Duration to JSON: out of range");
  }
  let text = d.seconds.toString();
  if (nanos !== 0) {
    let digits = Math.abs(nanos).toString();
    digits = "0".repeat(9 - digits.length) + digits;
    if (digits.substring(3) === "000000") digits = digits.substring(0, 3);
    else if (digits.substring(6) === "000") digits = digits.substring(0, 6);
    text += "." + digits;
    if (nanos < 0 && seconds === 0) text = "-" + text;
  }
  return '"' + text + 's"';
}
