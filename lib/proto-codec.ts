// Binary protobuf for protobuf-es messages, compiled once per message type.
//
// protobuf-es's toBinary and fromBinary go through its reflection layer for
// every field of every message: a wrapper object per message and per list, a
// chunk array and a fork per nested message, a DataView per double, a tuple
// per tag. For the messages Chirp sends between its processes (ten hydrated
// tweets in a timeline page: 2.4 KB) that is about 130 µs to encode and 90 µs
// to decode on the 2-core machine, paid on each side of each hop. This codec
// builds a plan once per type from the same descriptors, generates an encoder
// and a decoder from it, writes into one reused buffer, and gives back
// exactly what protobuf-es would: the same bytes
// (fields in number order, packed repeated scalars, unknown fields kept and
// written back) and the same message objects (`$typeName`, zero values for
// implicit presence, `{ case, value }` oneofs, bigint 64-bit integers, strict
// UTF-8), so the two can be mixed freely. lib/proto-codec.test.ts holds it to
// protobuf-es on every message type Chirp generates.
//
// It compiles proto3 messages without maps, groups, wrapper or Struct fields
// (none of which Chirp's messages use); for any other type, and any type that
// reaches one, `codecFor` answers protobuf-es's own functions.
import { fromBinary, ScalarType, toBinary, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

export interface BinaryCodec<Desc extends DescMessage> {
  /** The message's bytes, as toBinary writes them, in a Buffer of their own. */
  encode(message: MessageShape<Desc>): Buffer;
  /** The message, as fromBinary reads it; bytes fields are views into `bytes`. */
  decode(bytes: Uint8Array): MessageShape<Desc>;
}

const codecs = new WeakMap<DescMessage, BinaryCodec<DescMessage>>();

/** The codec of `schema`: compiled where it can be, protobuf-es's own functions otherwise. */
export function codecFor<Desc extends DescMessage>(schema: Desc): BinaryCodec<Desc> {
  let codec = codecs.get(schema);
  if (codec === undefined) {
    codec = compilable(schema, new Set())
      ? compiledCodec(planOf(schema))
      : { encode: (m) => asBuffer(toBinary(schema, m as MessageShape<Desc>)), decode: (b) => fromBinary(schema, b) };
    codecs.set(schema, codec);
  }
  return codec as unknown as BinaryCodec<Desc>;
}

/** `toBinary`, compiled. */
export function encodeMessage<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Buffer {
  return codecFor(schema).encode(message);
}

/** `fromBinary`, compiled. */
export function decodeMessage<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): MessageShape<Desc> {
  return codecFor(schema).decode(bytes);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------------------
// Which types compile

const EDITION_PROTO3 = 999;
const IMPLICIT = 2;
const JSON_SHAPED = new Set(["google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"]);
const WRAPPERS = /^google\.protobuf\.(Double|Float|Int64|UInt64|Int32|UInt32|Bool|String|Bytes)Value$/;

function compilable(desc: DescMessage, seen: Set<DescMessage>): boolean {
  if (seen.has(desc)) return true;
  seen.add(desc);
  if (desc.file.edition !== EDITION_PROTO3 || JSON_SHAPED.has(desc.typeName)) return false;
  for (const f of desc.fields) {
    if (f.fieldKind === "map" || ("delimitedEncoding" in f && f.delimitedEncoding)) return false;
    if (f.fieldKind === "enum" && !f.enum.open) return false;
    if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) {
      if (f.fieldKind === "message" && f.oneof === undefined && WRAPPERS.test(f.message.typeName)) return false;
      if (!compilable(f.message, seen)) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Plans

const enum Kind {
  Scalar,
  Message,
  List,
}

interface FieldPlan {
  readonly no: number;
  readonly name: string;
  readonly kind: Kind;
  /** The scalar type (enums: INT32); undefined for messages. */
  readonly scalar: ScalarType;
  readonly longAsString: boolean;
  /** Implicit presence: left off the wire at its zero value. */
  readonly implicit: boolean;
  /** Repeated numeric scalars, written packed. */
  readonly packed: boolean;
  /** The oneof's property, for a member of one. */
  readonly oneof: string | undefined;
  /** The tag's varint bytes, for the wire type the field is written with. */
  readonly tag: readonly number[];
  /** Messages and lists of messages: the element's plan (set after construction: types can recurse). */
  message: MessagePlan | undefined;
}

interface MessagePlan {
  readonly typeName: string;
  /** In field-number order: the order toBinary writes. */
  readonly fields: readonly FieldPlan[];
  /** A new message with every field at its zero value, as create() makes one. */
  readonly zero: () => Record<string, unknown>;
  /** Writes a message's fields (compiled: compileEncoder). */
  encode: (m: Record<string, unknown>) => void;
  /** Reads fields up to `end` into `into` or a new message (compiled: compileDecoder). */
  decode: (end: number, into: Record<string, unknown> | undefined, depth: number) => Record<string, unknown>;
}

const plans = new WeakMap<DescMessage, MessagePlan>();

function planOf(desc: DescMessage): MessagePlan {
  const had = plans.get(desc);
  if (had !== undefined) return had;
  const sorted = [...desc.fields].sort((a, b) => a.number - b.number);
  const fields = sorted.map(fieldPlan);
  const plan: MessagePlan = { typeName: desc.typeName, fields, zero: zeroFactory(desc), encode: unset, decode: unset };
  // Registered before its fields' types are planned: a type can contain itself (Tweet.quote_tweet).
  plans.set(desc, plan);
  sorted.forEach((f, i) => {
    if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) fields[i]!.message = planOf(f.message);
  });
  plan.encode = compileEncoder(plan);
  plan.decode = compileDecoder(plan);
  return plan;
}

function unset(): never {
  throw new Error("proto-codec: plan used before it was compiled");
}

// The compiled functions read and write each field by its name as a constant
// (m["text"]): a property access V8 specializes per message type. Looked up
// by a name held in a variable (m[f.name]) every access went through V8's
// generic keyed lookup, the larger part of the time of a walk over the plan.
// Names and type names go in as JSON string literals; nothing else of the
// descriptors becomes code.

function compileEncoder(plan: MessagePlan): (m: Record<string, unknown>) => void {
  const lines: string[] = [];
  plan.fields.forEach((f, i) => {
    const F = `F[${i}]`;
    let write: string;
    if (f.kind === Kind.Message) write = `w.bytes(${F}.tag); at = w.startLength(); ${F}.message.encode(v); w.endLength(at);`;
    else if (f.kind === Kind.List) write = `if (v.length > 0) writeList(${F}, v);`;
    else write = `w.bytes(${F}.tag); writeScalar(${F}, v);`;
    if (f.oneof !== undefined) {
      lines.push(`o = m[${JSON.stringify(f.oneof)}]; if (o !== undefined && o.case === ${JSON.stringify(f.name)}) { v = o.value; ${write} }`);
    } else {
      const zero = f.implicit ? ` && !isZero(${f.scalar}, v)` : "";
      lines.push(`v = m[${JSON.stringify(f.name)}]; if (v !== undefined${zero}) { ${write} }`);
    }
  });
  lines.push("v = m.$unknown; if (v !== undefined) writeUnknown(v);");
  const body = `return function encode(m) {\n  let v, o, at;\n  ${lines.join("\n  ")}\n};`;
  return new Function("F", "w", "writeScalar", "writeList", "writeUnknown", "isZero", body)(plan.fields, w, writeScalar, writeList, writeUnknown, isZero) as (m: Record<string, unknown>) => void;
}

function compileDecoder(plan: MessagePlan): MessagePlan["decode"] {
  const cases: string[] = [];
  plan.fields.forEach((f, i) => {
    const F = `F[${i}]`;
    const name = JSON.stringify(f.name);
    if (f.kind === Kind.List) {
      cases.push(`case ${f.no}: readList(${F}, m[${name}], wireType, depth); break;`);
      return;
    }
    if (f.oneof === undefined) {
      cases.push(
        f.kind === Kind.Message
          ? `case ${f.no}: { const len = r.varint32(); m[${name}] = ${F}.message.decode(r.end(len), m[${name}], depth + 1); break; }`
          : `case ${f.no}: m[${name}] = readScalar(${F}); break;`,
      );
      return;
    }
    const oneof = JSON.stringify(f.oneof);
    cases.push(
      f.kind === Kind.Message
        ? `case ${f.no}: { const had = m[${oneof}]; const len = r.varint32(); m[${oneof}] = { case: ${name}, value: ${F}.message.decode(r.end(len), had.case === ${name} ? had.value : undefined, depth + 1) }; break; }`
        : `case ${f.no}: m[${oneof}] = { case: ${name}, value: readScalar(${F}) }; break;`,
    );
  });
  const body = `return function decode(end, into, depth) {
  if (depth >= RECURSION_LIMIT) throw tooDeep(${JSON.stringify(plan.typeName)});
  const m = into === undefined ? zero() : into;
  while (r.pos < end) {
    const tag = r.varint32();
    const no = tag >>> 3;
    const wireType = tag & 7;
    if (no === 0 || wireType > 5) throw illegalTag(no, wireType);
    switch (no) {
      ${cases.join("\n      ")}
      default: readUnknown(m, no, wireType, depth);
    }
  }
  if (r.pos > end) throw new RangeError("premature EOF");
  return m;
};`;
  return new Function("F", "r", "zero", "readScalar", "readList", "readUnknown", "tooDeep", "illegalTag", "RECURSION_LIMIT", body)(
    plan.fields,
    r,
    plan.zero,
    readScalar,
    readList,
    readUnknown,
    tooDeep,
    illegalTag,
    RECURSION_LIMIT,
  ) as MessagePlan["decode"];
}

function fieldPlan(f: DescField): FieldPlan {
  const list = f.fieldKind === "list";
  const isMessage = f.fieldKind === "message" || (list && f.listKind === "message");
  const scalar: ScalarType = f.fieldKind === "scalar" || (list && f.listKind === "scalar") ? f.scalar! : ScalarType.INT32;
  const packed = list && !isMessage && f.packed;
  const wireType = isMessage || packed ? 2 : wireTypeOf(scalar);
  return {
    no: f.number,
    name: f.localName,
    kind: list ? Kind.List : isMessage ? Kind.Message : Kind.Scalar,
    scalar,
    longAsString: "longAsString" in f && f.longAsString === true,
    implicit: !list && f.presence === IMPLICIT && f.oneof === undefined,
    packed,
    oneof: f.oneof?.localName,
    tag: varintBytes(((f.number << 3) | wireType) >>> 0),
    message: undefined,
  };
}

function wireTypeOf(scalar: ScalarType): number {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return 2;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 1;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return 5;
    default:
      return 0;
  }
}

function varintBytes(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

function zeroValue(scalar: ScalarType, longAsString: boolean): unknown {
  switch (scalar) {
    case ScalarType.STRING:
      return "";
    case ScalarType.BOOL:
      return false;
    case ScalarType.BYTES:
      return new Uint8Array(0);
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return longAsString ? "0" : 0n;
    default:
      return 0;
  }
}

/**
 * A function returning a fresh zero message, written out as one object
 * literal (one hidden class, no loop), with create()'s members in create()'s
 * order: oneofs as `{ case: undefined }`, implicit-presence fields at their
 * zero values, explicit ones (messages, proto3 `optional`) absent.
 */
function zeroFactory(desc: DescMessage): () => Record<string, unknown> {
  const parts = [`"$typeName": ${JSON.stringify(desc.typeName)}`];
  for (const member of desc.members) {
    const key = JSON.stringify(member.localName);
    if (member.kind === "oneof") parts.push(`${key}: { case: undefined }`);
    else if (member.fieldKind === "list") parts.push(`${key}: []`);
    else if (member.presence !== IMPLICIT) continue;
    else {
      const z = zeroValue(member.fieldKind === "scalar" ? member.scalar : ScalarType.INT32, member.fieldKind === "scalar" && member.longAsString);
      parts.push(`${key}: ${typeof z === "bigint" ? "0n" : z instanceof Uint8Array ? "new Uint8Array(0)" : JSON.stringify(z)}`);
    }
  }
  // The keys are JSON string literals and the values constants: nothing from outside runs.
  return new Function(`return function zero() { return { ${parts.join(", ")} }; };`)() as () => Record<string, unknown>;
}

function compiledCodec(plan: MessagePlan): BinaryCodec<DescMessage> {
  return {
    encode: (message) => {
      w.pos = 0;
      plan.encode(message as unknown as Record<string, unknown>);
      return w.take();
    },
    decode: (bytes) => {
      r.reset(bytes);
      try {
        return plan.decode(bytes.byteLength, undefined, 0) as unknown as MessageShape<DescMessage>;
      } finally {
        r.reset(EMPTY);
      }
    },
  };
}

// ---------------------------------------------------------------------------
// Writing

const INITIAL_BUFFER = 64 * 1024;
const MAX_KEPT_BUFFER = 4 * 1024 * 1024;

/** One buffer for every encode in the process: an encode runs to the end without yielding. */
class Writer {
  buf = Buffer.allocUnsafe(INITIAL_BUFFER);
  view: DataView<ArrayBufferLike> = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  pos = 0;

  /** Room for `n` more bytes. */
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /** What was written, copied out (the buffer is reused by the next encode). */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    // A rare large message does not keep its buffer for the life of the process.
    if (this.buf.length > MAX_KEPT_BUFFER) {
      this.buf = Buffer.allocUnsafe(INITIAL_BUFFER);
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    }
    return out;
  }

  bytes(b: readonly number[]): void {
    this.room(b.length);
    for (let i = 0; i < b.length; i++) this.buf[this.pos++] = b[i]!;
  }

  varint32(n: number): void {
    this.room(5);
    while (n > 0x7f) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  /** A 64-bit varint from its two's-complement halves. */
  varint64(lo: number, hi: number): void {
    this.room(10);
    while (hi !== 0 || lo > 0x7f || lo < 0) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.buf[this.pos++] = lo;
  }

  /**
   * Starts a length-delimited value: one byte is kept for its length, enough
   * for up to 127 bytes; `endLength` moves the value up when it needs more.
   */
  startLength(): number {
    this.room(1);
    return this.pos++;
  }

  endLength(at: number): void {
    const len = this.pos - at - 1;
    if (len < 0x80) {
      this.buf[at] = len;
      return;
    }
    const extra = varintBytes(len).length - 1;
    this.room(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    let n = len;
    let i = at;
    while (n > 0x7f) {
      this.buf[i++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[i] = n;
  }

  string(s: string): void {
    // Short ASCII (the usual id, handle, hashtag) is copied byte by byte; anything else as UTF-8 by Buffer (as TextEncoder writes it, lone surrogates as U+FFFD).
    if (s.length < 0x80) {
      this.room(s.length + 1);
      const at = this.pos++;
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        this.buf[this.pos++] = c;
      }
      if (i === s.length) {
        this.buf[at] = s.length;
        return;
      }
      this.pos = at;
    }
    const n = Buffer.byteLength(s, "utf8");
    this.varint32(n);
    this.room(n);
    this.pos += this.buf.write(s, this.pos, n, "utf8");
  }
}

const w = new Writer();

/** A repeated field with at least one element. */
function writeList(f: FieldPlan, list: readonly unknown[]): void {
  if (f.message !== undefined) {
    for (const item of list) {
      w.bytes(f.tag);
      const at = w.startLength();
      f.message.encode(item as Record<string, unknown>);
      w.endLength(at);
    }
  } else if (f.packed) {
    w.bytes(f.tag);
    const at = w.startLength();
    for (const item of list) writeScalar(f, item);
    w.endLength(at);
  } else {
    for (const item of list) {
      w.bytes(f.tag);
      writeScalar(f, item);
    }
  }
}

/** Unknown fields kept by a decode, written back after the known ones (as toBinary does). */
function writeUnknown(unknown: ReadonlyArray<{ no: number; wireType: number; data: Uint8Array }>): void {
  for (const u of unknown) {
    w.varint32(((u.no << 3) | u.wireType) >>> 0);
    w.room(u.data.byteLength);
    w.buf.set(u.data, w.pos);
    w.pos += u.data.byteLength;
  }
}

/** isScalarZeroValue: +0 (not -0) for floating point, 0/0n/"0" for integers. */
function isZero(scalar: ScalarType, v: unknown): boolean {
  switch (scalar) {
    case ScalarType.BOOL:
      return v === false;
    case ScalarType.STRING:
      return v === "";
    case ScalarType.BYTES:
      return v instanceof Uint8Array && v.byteLength === 0;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return Object.is(v, 0);
    default:
      return v == 0;
  }
}

const UINT32_MAX = 0xffffffff;
const FLOAT32_MAX = 3.4028234663852886e38;

function writeScalar(f: FieldPlan, v: unknown): void {
  switch (f.scalar) {
    case ScalarType.STRING:
      if (typeof v !== "string") throw invalid(f, "string", v);
      w.string(v);
      return;
    case ScalarType.BOOL:
      w.room(1);
      w.buf[w.pos++] = v ? 1 : 0;
      return;
    case ScalarType.UINT32: {
      const n = uint32(f, v);
      w.varint32(n);
      return;
    }
    case ScalarType.INT32: {
      const n = int32(f, v);
      if (n >= 0) w.varint32(n);
      else w.varint64(n, -1);
      return;
    }
    case ScalarType.SINT32: {
      const n = int32(f, v);
      w.varint32(((n << 1) ^ (n >> 31)) >>> 0);
      return;
    }
    case ScalarType.INT64:
      halves.setBigInt64(0, int64(f, v), true);
      w.varint64(halves.getUint32(0, true), halves.getUint32(4, true));
      return;
    case ScalarType.UINT64:
      halves.setBigUint64(0, uint64(f, v), true);
      w.varint64(halves.getUint32(0, true), halves.getUint32(4, true));
      return;
    case ScalarType.SINT64: {
      const b = int64(f, v);
      halves.setBigUint64(0, (b << 1n) ^ (b >> 63n), true);
      w.varint64(halves.getUint32(0, true), halves.getUint32(4, true));
      return;
    }
    case ScalarType.DOUBLE:
      if (typeof v !== "number") throw invalid(f, "double", v);
      w.room(8);
      w.view.setFloat64(w.pos, v, true);
      w.pos += 8;
      return;
    case ScalarType.FLOAT: {
      const n = typeof v === "string" ? Number(v) : v;
      if (typeof n !== "number" || (Number.isFinite(n) && Math.abs(n) > FLOAT32_MAX)) throw invalid(f, "float32", v);
      w.room(4);
      w.view.setFloat32(w.pos, n, true);
      w.pos += 4;
      return;
    }
    case ScalarType.FIXED32:
      w.room(4);
      w.view.setUint32(w.pos, uint32(f, v), true);
      w.pos += 4;
      return;
    case ScalarType.SFIXED32:
      w.room(4);
      w.view.setInt32(w.pos, int32(f, v), true);
      w.pos += 4;
      return;
    case ScalarType.FIXED64:
      w.room(8);
      w.view.setBigUint64(w.pos, uint64(f, v), true);
      w.pos += 8;
      return;
    case ScalarType.SFIXED64:
      w.room(8);
      w.view.setBigInt64(w.pos, int64(f, v), true);
      w.pos += 8;
      return;
    case ScalarType.BYTES: {
      if (!(v instanceof Uint8Array)) throw invalid(f, "bytes", v);
      w.varint32(v.byteLength);
      w.room(v.byteLength);
      w.buf.set(v, w.pos);
      w.pos += v.byteLength;
      return;
    }
  }
}

function uint32(f: FieldPlan, v: unknown): number {
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > UINT32_MAX) throw invalid(f, "uint32", v);
  return n;
}

function int32(f: FieldPlan, v: unknown): number {
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number" || (n | 0) !== n) throw invalid(f, "int32", v);
  return n;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** A 64-bit value's two 32-bit halves, little-endian (DataView's bigint access is several times faster than masks and shifts). */
const halves = new DataView(new ArrayBuffer(8));

function int64(f: FieldPlan, v: unknown): bigint {
  const b = toBigInt(f, v, "int64");
  if (b < INT64_MIN || b > INT64_MAX) throw invalid(f, "int64", v);
  return b;
}

function uint64(f: FieldPlan, v: unknown): bigint {
  const b = toBigInt(f, v, "uint64");
  if (b < 0n || b > UINT64_MAX) throw invalid(f, "uint64", v);
  return b;
}

function toBigInt(f: FieldPlan, v: unknown, what: string): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" || typeof v === "string") {
    try {
      return BigInt(v);
    } catch {
      // reported below
    }
  }
  throw invalid(f, what, v);
}

function invalid(f: FieldPlan, what: string, v: unknown): Error {
  return new Error(`cannot encode field ${f.name} to binary: invalid ${what}: ${typeof v === "bigint" ? `${v}n` : String(v)}`);
}

// ---------------------------------------------------------------------------
// Reading

const EMPTY = new Uint8Array(0);
const RECURSION_LIMIT = 100;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

class Reader {
  buf: Uint8Array = EMPTY;
  view: DataView<ArrayBufferLike> = new DataView(EMPTY.buffer);
  pos = 0;

  reset(bytes: Uint8Array): void {
    this.buf = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  varint32(): number {
    const b = this.buf;
    let x = b[this.pos++]!;
    if (x < 0x80) return x;
    x &= 0x7f;
    for (let shift = 7; shift < 32; shift += 7) {
      const c = b[this.pos++]!;
      x |= (c & 0x7f) << shift;
      if (c < 0x80) return x >>> 0;
    }
    // A 10-byte encoding of a negative int32: its upper bytes carry the sign only.
    for (let i = 0; i < 5; i++) if (b[this.pos++]! < 0x80) return x >>> 0;
    throw new Error("invalid varint");
  }

  /** The halves of the last 64-bit varint read. */
  lo = 0;
  hi = 0;

  /** Reads a 64-bit varint into `lo` and `hi`. */
  varint64(): void {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (; shift < 28; shift += 7) {
      const c = b[this.pos++]!;
      lo |= (c & 0x7f) << shift;
      if (c < 0x80) {
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    const mid = b[this.pos++]!;
    lo |= (mid & 0x0f) << 28;
    hi = (mid & 0x7f) >> 4;
    if (mid >= 0x80) {
      for (shift = 3; shift <= 31; shift += 7) {
        const c = b[this.pos++]!;
        hi |= (c & 0x7f) << shift;
        if (c < 0x80) break;
        if (shift === 31) throw new Error("invalid varint");
      }
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** The last varint64 as uint64. */
  unsigned(): bigint {
    if (this.hi === 0) return BigInt(this.lo);
    halves.setUint32(0, this.lo, true);
    halves.setUint32(4, this.hi, true);
    return halves.getBigUint64(0, true);
  }

  /** The last varint64 as int64 (two's complement). */
  signed(): bigint {
    if (this.hi === 0) return BigInt(this.lo);
    halves.setUint32(0, this.lo, true);
    halves.setUint32(4, this.hi, true);
    return halves.getBigInt64(0, true);
  }

  /** A varint's truth: any bit set in any of its bytes. */
  bool(): boolean {
    let bits = 0;
    for (let i = 0; i < 10; i++) {
      const c = this.buf[this.pos++]!;
      bits |= c & 0x7f;
      if (c < 0x80) return bits !== 0;
    }
    throw new Error("invalid varint");
  }

  end(len: number): number {
    const end = this.pos + len;
    if (end > this.buf.byteLength) throw new RangeError("premature EOF");
    return end;
  }

  string(): string {
    const len = this.varint32();
    const start = this.pos;
    const end = this.end(len);
    this.pos = end;
    const b = this.buf;
    if (len <= 32) {
      let s = "";
      for (let i = start; i < end; i++) {
        const c = b[i]!;
        if (c >= 0x80) return strictUtf8.decode(b.subarray(start, end));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return strictUtf8.decode(b.subarray(start, end));
  }

  /** Skips a field of this wire type; answers its bytes, as fromBinary keeps unknown fields. */
  skip(wireType: number, no: number, depth: number): Uint8Array {
    const start = this.pos;
    switch (wireType) {
      case 0:
        while (this.buf[this.pos++]! & 0x80) {
          // continuation bytes
        }
        break;
      case 1:
        this.pos += 8;
        break;
      case 5:
        this.pos += 4;
        break;
      case 2: {
        const len = this.varint32();
        this.pos = this.end(len);
        break;
      }
      case 3:
        for (;;) {
          if (depth >= RECURSION_LIMIT) throw new Error("cannot skip group: maximum recursion depth reached");
          const tag = this.varint32();
          if ((tag & 7) === 4) {
            if (tag >>> 3 !== no) throw new Error("invalid end group tag");
            break;
          }
          this.skip(tag & 7, tag >>> 3, depth + 1);
        }
        break;
      default:
        throw new Error(`cant skip wire type ${wireType}`);
    }
    if (this.pos > this.buf.byteLength) throw new RangeError("premature EOF");
    return this.buf.subarray(start, this.pos);
  }
}

const r = new Reader();

/** One occurrence of a repeated field: a message, a packed run of scalars, or one scalar. */
function readList(f: FieldPlan, list: unknown[], wireType: number, depth: number): void {
  if (f.message !== undefined) {
    const len = r.varint32();
    list.push(f.message.decode(r.end(len), undefined, depth + 1));
  } else if (wireType === 2 && f.scalar !== ScalarType.STRING && f.scalar !== ScalarType.BYTES) {
    const len = r.varint32();
    const listEnd = r.end(len);
    while (r.pos < listEnd) list.push(readScalar(f));
  } else {
    list.push(readScalar(f));
  }
}

/** A field this type does not know: skipped, and kept in `$unknown` as fromBinary keeps it. */
function readUnknown(m: Record<string, unknown>, no: number, wireType: number, depth: number): void {
  const data = r.skip(wireType, no, depth);
  const unknown = (m.$unknown ??= []) as Array<{ no: number; wireType: number; data: Uint8Array }>;
  unknown.push({ no, wireType, data });
}

function tooDeep(typeName: string): Error {
  return new Error(`cannot decode ${typeName} from binary: maximum recursion depth of ${RECURSION_LIMIT} reached`);
}

function illegalTag(no: number, wireType: number): Error {
  return new Error(`illegal tag: field no ${no} wire type ${wireType}`);
}

function readScalar(f: FieldPlan): unknown {
  switch (f.scalar) {
    case ScalarType.STRING:
      return r.string();
    case ScalarType.BOOL:
      return r.bool();
    case ScalarType.UINT32:
      return r.varint32();
    case ScalarType.INT32:
      return r.varint32() | 0;
    case ScalarType.SINT32: {
      const z = r.varint32();
      return (z >>> 1) ^ -(z & 1);
    }
    case ScalarType.UINT64:
      r.varint64();
      return long(f, r.unsigned());
    case ScalarType.INT64:
      r.varint64();
      return long(f, r.signed());
    case ScalarType.SINT64: {
      r.varint64();
      const z = r.unsigned();
      return long(f, (z >> 1n) ^ -(z & 1n));
    }
    case ScalarType.DOUBLE: {
      const at = r.pos;
      r.pos = r.end(8);
      return r.view.getFloat64(at, true);
    }
    case ScalarType.FLOAT: {
      const at = r.pos;
      r.pos = r.end(4);
      return r.view.getFloat32(at, true);
    }
    case ScalarType.FIXED32: {
      const at = r.pos;
      r.pos = r.end(4);
      return r.view.getUint32(at, true);
    }
    case ScalarType.SFIXED32: {
      const at = r.pos;
      r.pos = r.end(4);
      return r.view.getInt32(at, true);
    }
    case ScalarType.FIXED64: {
      const at = r.pos;
      r.pos = r.end(8);
      return long(f, r.view.getBigUint64(at, true));
    }
    case ScalarType.SFIXED64: {
      const at = r.pos;
      r.pos = r.end(8);
      return long(f, r.view.getBigInt64(at, true));
    }
    case ScalarType.BYTES: {
      const len = r.varint32();
      const start = r.pos;
      r.pos = r.end(len);
      return r.buf.subarray(start, r.pos);
    }
  }
}

function long(f: FieldPlan, v: bigint): bigint | string {
  return f.longAsString ? v.toString() : v;
}
