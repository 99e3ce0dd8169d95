// Random protobuf-es messages of any type, for tests that hold a compiled
// encoder to protobuf-es itself (gateway/fast-json.test.ts: JSON;
// lib/proto-codec.test.ts: binary). Deterministic from a seed, so a failure
// repeats; values chosen at the edges (zero and -0, the ends of each integer
// range, NaN and the infinities, non-ASCII and long strings, unknown enum
// numbers); timestamps and durations within their JSON ranges.
import { create, ScalarType, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

/** A small deterministic generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = [
  "",
  "a",
  "handle_42",
  'quote " and \\ backslash',
  "line\nbreak\ttab\u0000nul\u001f",
  "héllo wörld",
  "日本語のテキスト",
  "emoji 🐦🔥",
  "lone \ud800 surrogate",
  "\u2028\u2029",
  "</script>",
  "y".repeat(127),
  "z".repeat(128),
  "long ".repeat(60),
];

function randomScalar(type: ScalarType, r: () => number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  switch (type) {
    case ScalarType.STRING:
      return pick(STRINGS);
    case ScalarType.BOOL:
      return r() < 0.5;
    case ScalarType.DOUBLE:
      return pick([0, -0, 1.5, -90, 180, 3.141592653589793, 1e21, 5e-324, 1e300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    case ScalarType.FLOAT:
      return pick([0, -0, 1.5, -90, 180, 3.4e38, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return pick([0n, 1n, 127n, 128n, 2n ** 32n, 1234567890123456789n, 1796691299249000000n, 18446744073709551615n]);
    case ScalarType.INT64:
    case ScalarType.SFIXED64:
    case ScalarType.SINT64:
      return pick([0n, 1n, -1n, 2n ** 53n + 1n, 9223372036854775807n, -9223372036854775808n]);
    case ScalarType.BYTES:
      return pick([new Uint8Array(), new Uint8Array([0, 255, 62, 63]), new Uint8Array([1, 2, 3, 4, 5]), new Uint8Array(130).fill(7)]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return pick([0, 1, 127, 128, 16384, 4294967295]);
    default:
      return pick([0, 1, -1, 127, 128, 2147483647, -2147483648]);
  }
}

function randomValue(f: DescField, r: () => number, depth: number): unknown {
  const single = (kind: "scalar" | "enum" | "message"): unknown => {
    if (kind === "enum") {
      const numbers = [...f.enum!.values.map((v) => v.number), 99];
      return numbers[Math.floor(r() * numbers.length)];
    }
    if (kind === "message") return randomMessage(f.message!, r, depth + 1);
    return randomScalar(f.scalar!, r);
  };
  switch (f.fieldKind) {
    case "list":
      return Array.from({ length: depth > 2 ? 0 : Math.floor(r() * 4) }, () => single(f.listKind));
    case "message":
      return depth > 2 || r() < 0.3 ? undefined : randomMessage(f.message, r, depth + 1);
    case "enum":
      return single("enum");
    case "scalar":
      return randomScalar(f.scalar, r);
    default:
      return undefined;
  }
}

/** A message of `desc` with each field set or left at its zero value at random, and one member of each oneof or none. */
export function randomMessage<Desc extends DescMessage>(desc: Desc, r: () => number, depth = 0): MessageShape<Desc> {
  if (desc.typeName === "google.protobuf.Timestamp") {
    const seconds = [0n, 1_764_979_200n, -62_135_596_800n, 253_402_300_799n][Math.floor(r() * 4)]!;
    const nanos = [0, 1_000_000, 123_000_000, 123_456_000, 123_456_789, 999_999_999][Math.floor(r() * 6)]!;
    return create(desc, { seconds, nanos } as never);
  }
  if (desc.typeName === "google.protobuf.Duration") {
    const [seconds, nanos] = [[0n, 0], [1n, 500_000_000], [0n, -250_000], [-3n, -1], [315_576_000_000n, 0]][Math.floor(r() * 5)]!;
    return create(desc, { seconds, nanos } as never);
  }
  const init: Record<string, unknown> = {};
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      const f = member.fields[Math.floor(r() * (member.fields.length + 1))];
      const value = f === undefined ? undefined : randomValue(f, r, depth);
      if (f !== undefined && value !== undefined) init[member.localName] = { case: f.localName, value };
      continue;
    }
    const value = randomValue(member, r, depth);
    if (value !== undefined) init[member.localName] = value;
  }
  return create(desc, init as never);
}
