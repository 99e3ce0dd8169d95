// `chirp reshard status`: a workflow's state as an operator reads it.
import type { ReshardState } from "./state.js";

const NEXT: Record<ReshardState["phase"], string> = {
  created: "copy the snapshot (run chirp reshard again)",
  copying: "finish the copy (run chirp reshard again: it resumes from each table's last key)",
  "catching-up": "catch up and verify (run chirp reshard again)",
  verified: "switch reads, then writes (chirp reshard again); chirp reshard abort drops the targets",
  "reads-switched": "switch writes (chirp reshard again; reads and writes stay on the source meanwhile, the targets are kept current only while a run is active); abort switches reads back",
  "writes-switched": "the targets serve; chirp reshard complete drops the source's rows of the range and rewrites shard-config; abort switches writes back (the targets' changes replayed into the source) and drops the targets",
  complete: "nothing: the split is done",
};

export function formatStatus(s: ReshardState): string {
  const lines = [
    `reshard ${s.keyspace}/${s.source.name} (${s.source.database} on ${s.source.replicaSet}) -> ${s.targets.map((t) => `${t.name} (${t.database} on ${t.replicaSet})`).join(", ")}`,
    `phase ${s.phase}   created ${s.createTime}   updated ${s.updateTime}${s.runner ? `   last run by ${s.runner}` : ""}`,
  ];
  if (s.snapshot) lines.push(`snapshot at ${s.snapshot.file}:${s.snapshot.position} (gtid ${s.snapshot.gtid})`);
  const tables = Object.entries(s.copy);
  if (tables.length > 0) {
    const rows = tables.reduce((n, [, c]) => n + c.rows, 0);
    const done = tables.filter(([, c]) => c.done).length;
    const secs = s.copyStartTime && s.copyEndTime ? (Date.parse(s.copyEndTime) - Date.parse(s.copyStartTime)) / 1000 : undefined;
    lines.push(`copy: ${rows} rows, ${done}/${tables.length} tables done${secs === undefined ? "" : ` in ${secs.toFixed(1)} s`}`);
    const pending = tables.filter(([, c]) => !c.done);
    if (pending.length > 0) lines.push(`  still to copy: ${pending.map(([t, c]) => `${t} (${c.rows} rows so far)`).join(", ")}`);
  }
  if (s.catchUp) {
    lines.push(`catch-up: applied through ${s.catchUp.gtid}, lag ${(s.catchUp.lagMs / 1000).toFixed(3)} s at ${s.catchUp.updateTime}; ${s.catchUp.events} binlog transactions, ${s.catchUp.rowsApplied} rows applied`);
  }
  if (s.verify) {
    lines.push(`verify: ${s.verify.ok ? "OK" : "MISMATCH"} at ${s.verify.position} (${s.verify.time}, ${s.verify.attempts > 1 ? `${s.verify.attempts - 1} re-check rounds` : "no re-check"})`);
    const width = Math.max(5, ...s.verify.tables.map((t) => t.table.length));
    for (const t of s.verify.tables) {
      lines.push(`  ${t.table.padEnd(width)}  ${t.target.padEnd(6)}  rows ${t.sourceRows} / ${t.targetRows}  checksum ${t.sourceChecksum} / ${t.targetChecksum}  ${t.match ? `ok${t.keysConverged ? ` (${t.keysConverged} keys ahead at the position, converged)` : ""}` : `DIFFERS${t.keysDiffering ? ` (keys ${t.keysDiffering.join("; ")})` : ""}`}`);
    }
  }
  if (s.readSwitch) lines.push(`reads switched at ${s.readSwitch.time} (topology epoch ${s.readSwitch.epoch}): routers name the targets; the source serves their reads and writes until the write switch`);
  if (s.writeSwitch) {
    const w = s.writeSwitch;
    lines.push(`writes switched at ${w.time}: held ${w.heldMs.toFixed(0)} ms (fence ${w.fenceMs.toFixed(0)}, drain ${w.drainMs.toFixed(0)}, verify ${w.verifyMs.toFixed(0)} ms) at ${w.position}; source rows fenced in ${w.fence}`);
  }
  if (s.reverse && s.phase === "writes-switched") {
    lines.push(`reverse replication (for abort): from ${s.reverse.gtid}${s.reverse.rowsApplied > 0 ? `, ${s.reverse.rowsApplied} rows replayed into the source so far` : ""}`);
  }
  if (s.completeTime) lines.push(`complete at ${s.completeTime}: ${s.writeSwitch?.fence ?? "the fence"} dropped`);
  lines.push(`next: ${NEXT[s.phase]}`);
  return lines.join("\n");
}
