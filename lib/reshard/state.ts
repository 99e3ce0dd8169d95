// A reshard workflow's state: one JSON document in the NATS KV bucket
// `chirp_reshard`, written only by compare-and-set so two runs of the command
// cannot both advance it (decision 23).
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ShardInfo } from "../shard/types.js";

export const RESHARD_BUCKET = "chirp_reshard";

export type ReshardPhase = "created" | "copying" | "catching-up" | "verified" | "reads-switched" | "writes-switched" | "complete";

/** A binlog position consistent with a snapshot: file and offset on one member, the GTID position on any. */
export interface SnapshotPosition {
  readonly file: string;
  readonly position: number;
  readonly gtid: string;
}

export interface TableCopy {
  /** The primary key of the last row copied (column order of the key, encodeKey'd); null before the first batch. */
  lastPk: unknown[] | null;
  rows: number;
  done: boolean;
}

export interface TableCheck {
  readonly table: string;
  readonly target: string;
  readonly sourceRows: number;
  readonly targetRows: number;
  readonly sourceChecksum: string;
  readonly targetChecksum: string;
  readonly match: boolean;
  /** Keys that differed at the verify position and converged once re-checked (the target was ahead: verify.ts). */
  readonly keysConverged?: number;
  /** Keys still different after the re-checks (at most 10 shown). */
  readonly keysDiffering?: readonly string[];
}

export interface ReshardState {
  readonly version: 1;
  readonly keyspace: string;
  readonly source: ShardInfo;
  readonly targets: readonly ShardInfo[];
  phase: ReshardPhase;
  readonly createTime: string;
  updateTime: string;
  /** The first snapshot's position: catch-up starts here (a resumed copy's later snapshots are newer). */
  snapshot?: SnapshotPosition;
  copy: Record<string, TableCopy>;
  copyStartTime?: string;
  copyEndTime?: string;
  catchUp?: {
    /** Every source transaction up to this GTID position is applied to the targets. */
    gtid: string;
    events: number;
    rowsApplied: number;
    /** Age of the last applied event (ms) when saved. */
    lagMs: number;
    updateTime: string;
  };
  /**
   * Reverse replication: every transaction of the targets' replica set up to
   * this GTID position is applied to the source's (fenced) tables. Starts at
   * the write switch (the targets' position when they began to serve); `abort`
   * replays from it (decision 23).
   */
  reverse?: { gtid: string; events: number; rowsApplied: number; lagMs: number; updateTime: string };
  /**
   * Members of the targets' replica set whose binlog expiry the write switch
   * turned off (and the value it had), so the binlog reverse replication needs
   * stays until complete or abort puts them back (binlog.ts).
   */
  binlogKept?: ReadonlyArray<{ readonly member: string; readonly expireLogsSeconds: number }>;
  verify?: { readonly time: string; readonly position: string; readonly attempts: number; readonly ok: boolean; readonly tables: readonly TableCheck[] };
  /** The live topology document that switched reads to the targets. */
  readSwitch?: { readonly epoch: number; readonly time: string };
  /** The write switch: how long writes were held (publish held -> publish targets serving) and its parts. */
  writeSwitch?: { readonly time: string; readonly fence: string; readonly heldMs: number; readonly fenceMs: number; readonly renameMs?: number; readonly drainMs: number; readonly verifyMs: number; readonly position: string };
  /** When `complete` dropped the source's rows of the range. */
  completeTime?: string;
  /** Who runs it now (host:pid), refreshed on every save. */
  runner?: string;
}

/** A primary key as JSON can hold it: bytes (VARBINARY, BINARY columns) as `{ "hex": ... }`. */
export function encodeKey(values: readonly unknown[]): unknown[] {
  return values.map((v) => (Buffer.isBuffer(v) ? { hex: v.toString("hex") } : v));
}

export function decodeKey(values: readonly unknown[]): unknown[] {
  return values.map((v) => (v !== null && typeof v === "object" && typeof (v as { hex?: unknown }).hex === "string" ? Buffer.from((v as { hex: string }).hex, "hex") : v));
}

export class ReshardStateConflict extends Error {
  override readonly name = "ReshardStateConflict";
}

export function openReshardKv(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(RESHARD_BUCKET, { history: 5 });
}

/** `<keyspace>.<source database>`: one workflow per source shard. */
export function reshardKey(keyspace: string, sourceDatabase: string): string {
  return `${keyspace}.${sourceDatabase}`;
}

/** The document and the revision it was read at; save() is a compare-and-set on it. */
export interface StateHandle {
  readonly state: ReshardState;
  save(): Promise<void>;
}

export async function loadState(kv: KV, key: string): Promise<StateHandle | undefined> {
  const entry = await kv.get(key);
  if (entry === null || entry.operation !== "PUT" || entry.length === 0) return undefined;
  return handle(kv, key, JSON.parse(entry.string()) as ReshardState, entry.revision);
}

export async function createState(kv: KV, key: string, state: ReshardState): Promise<StateHandle> {
  try {
    const revision = await kv.create(key, JSON.stringify(state));
    return handle(kv, key, state, revision);
  } catch (err) {
    throw new ReshardStateConflict(`a reshard of ${state.source.name} already exists (chirp reshard status)`, { cause: err });
  }
}

export async function deleteState(kv: KV, key: string): Promise<void> {
  await kv.delete(key);
}

function handle(kv: KV, key: string, state: ReshardState, revision: number): StateHandle {
  let rev = revision;
  return {
    state,
    async save() {
      state.updateTime = new Date().toISOString();
      try {
        rev = await kv.update(key, JSON.stringify(state), rev);
      } catch (err) {
        throw new ReshardStateConflict(
          `the state of the reshard of ${state.source.name} was changed by someone else (another run, or an abort); stopping`,
          { cause: err },
        );
      }
    },
  };
}
