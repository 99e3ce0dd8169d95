// The write switch's hold budget and the catch-up that runs before it
// (issue 23: writes of the moved range held at most 1 s end to end).
//
// The budget runs from publishing `writes: "held"` and covers every step of
// the hold (pause following, fence, drain, check, publish serving). A step that
// finds it spent, or would wait past it (the fence's RENAME and the check's
// queries carry what is left as max_statement_time; the drain an abort signal
// at the deadline), gives up: the switch is undone exactly as a failure is
// (switch.ts), and the run may try again once catch-up is current.
//
// The follower is the catch-up that keeps the targets current from the read
// switch to the write switch. The hold starts only once its lag is small: the
// time from reading the source's position to the follower having applied it,
// so the drain inside the hold has little to do.
import type { Connection } from "mysql2/promise";
import { gtidPosReaches, parseGtidList } from "../shard/gtid.js";
import { catchUp, CatchUpControl, type CatchUpOptions, type CatchUpProgress } from "./catch-up.js";
import type { ReshardPlan } from "./plan.js";
import { binlogGtidPos } from "./sql.js";
import type { StateHandle } from "./state.js";

/**
 * The command's default hold budget. End to end a held write also waits for
 * the release to reach its router (a NATS KV watch: milliseconds) and for its
 * own statement; a give-up adds the undo (views dropped, one RENAME back, one
 * publish). 800 ms keeps the whole within the 1 s with room for those.
 */
export const DEFAULT_HOLD_MS = 800;
/** The most catch-up lag at which the hold may start (default). */
export const DEFAULT_MAX_LAG_MS = 200;
/** How many times a run tries the write switch before it stops (default). */
export const DEFAULT_HOLD_ATTEMPTS = 3;
/**
 * The least time from the read switch to the first write switch (default). A
 * shard name resolved before the read switch (`-40`) and used after the write
 * switch names nothing (decision 23, part 2): a request resolving it before
 * the read switch, or a router applying the read switch late under load, must
 * stay in flight that long to meet that. Seen in the whole-system test with the
 * write switch a few hundred ms after the read switch: one LikeTweet answered
 * Unavailable "shard -40 unavailable".
 */
export const DEFAULT_SWITCH_GAP_MS = 2000;

export type HoldStep = "pause following" | "fence" | "drain" | "check" | "publish";

/** What the undo of a give-up cost (switch.ts fills it in once the switch is undone). */
export interface GiveUpCost {
  /** From publishing `writes: "held"` to publishing `writes: "source"` again. */
  readonly heldMs: number;
  /** Of heldMs: renaming the tables back and publishing. */
  readonly undoMs: number;
  /** Of undoMs: the tables back (views dropped, RENAME); the rest is the publish. */
  readonly unfenceMs?: number;
  /** From the step giving up to the undo's start (a statement or a batch in flight finishing). */
  readonly stopMs?: number;
}

/**
 * The hold budget ran out, or a step would have waited past it (or past
 * `--fence-wait` for the fence): the switch was undone, nothing lost, the
 * workflow stays in `reads-switched`.
 */
export class HoldBudgetExceeded extends Error {
  override readonly name = "HoldBudgetExceeded";
  constructor(
    readonly step: HoldStep,
    readonly budgetMs: number,
    readonly elapsedMs: number,
    options?: ErrorOptions & { readonly limit?: "hold budget" | "fence wait" },
    readonly cost?: GiveUpCost,
  ) {
    super(`the write switch gave up at ${step} after ${Math.round(elapsedMs)} ms (${options?.limit ?? "hold budget"} ${budgetMs} ms)`, options);
    this.limit = options?.limit ?? "hold budget";
  }
  readonly limit: "hold budget" | "fence wait";
  /** The same, with what the undo cost. */
  undone(cost: GiveUpCost): HoldBudgetExceeded {
    return new HoldBudgetExceeded(this.step, this.budgetMs, this.elapsedMs, { cause: this.cause, limit: this.limit }, cost);
  }
}

/**
 * A deadline from the start of the hold. What is left for the next step keeps
 * back what undoing would cost (`reserve`): an undo publishes once, as the
 * hold's first publish did, and renames back what the fence renamed, so the
 * switch measures those as it goes and a give-up still ends near the budget.
 */
export class HoldBudget {
  private readonly start = performance.now();
  readonly deadline: number;
  private reserved = 0;
  constructor(readonly budgetMs: number) {
    this.deadline = this.start + budgetMs;
  }
  elapsed(): number {
    return performance.now() - this.start;
  }
  /** Keeps `ms` more back for the undo. */
  reserve(ms: number): void {
    this.reserved += Math.max(0, ms);
  }
  left(): number {
    return this.deadline - this.reserved - performance.now();
  }
  exceeded(step: HoldStep, cause?: unknown): HoldBudgetExceeded {
    return new HoldBudgetExceeded(step, this.budgetMs, this.elapsed(), cause === undefined ? undefined : { cause });
  }
  /** Throws if nothing is left for `step`. */
  check(step: HoldStep): void {
    if (this.left() <= 0) throw this.exceeded(step);
  }
  /** What is left, as MariaDB's max_statement_time (seconds, at least 1 ms: 0 would mean no limit). */
  statementSeconds(): string {
    return (Math.max(1, Math.floor(this.left())) / 1000).toFixed(3);
  }
  /** `work` raced against the deadline; past it, `onLate` (which should make `work` stop) runs and the step gives up. */
  async within<T>(step: HoldStep, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.check(step);
    const late = new AbortController();
    const timer = setTimeout(() => late.abort(this.exceeded(step)), Math.max(0, this.left()));
    try {
      return await work(late.signal);
    } catch (err) {
      if (late.signal.aborted) throw late.signal.reason as HoldBudgetExceeded;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** MariaDB's answer to a statement stopped by max_statement_time (1969), or a lock wait past lock_wait_timeout (1205). */
export function isStatementTimeout(err: unknown): boolean {
  const errno = (err as { errno?: number }).errno;
  return errno === 1969 || errno === 1205;
}

/**
 * The catch-up that runs until stopped (`until: "never"`), with what it has
 * applied so far, so the write switch can wait for its lag to be small.
 */
export class Follower {
  private readonly stopper = new AbortController();
  private readonly control = new CatchUpControl();
  private readonly signal: AbortSignal;
  private applied: string;
  private readonly waiters = new Set<() => void>();
  /** Resolves when the follower ends: undefined once stopped, the error if it failed. */
  readonly ended: Promise<unknown>;

  constructor(plan: ReshardPlan, handle: StateHandle, opts: Omit<CatchUpOptions, "until">) {
    this.signal = opts.signal === undefined ? this.stopper.signal : AbortSignal.any([opts.signal, this.stopper.signal]);
    this.applied = handle.state.catchUp?.gtid ?? handle.state.snapshot?.gtid ?? "";
    const onProgress = (p: CatchUpProgress): void => {
      this.applied = p.gtid;
      opts.onProgress?.(p);
      for (const w of this.waiters) w();
    };
    this.ended = catchUp(plan, handle, { ...opts, until: "never", signal: this.signal, onProgress, control: this.control }).then(
      () => undefined,
      (err: unknown) => (this.signal.aborted ? undefined : err),
    );
    void this.ended.then(() => {
      for (const w of this.waiters) w();
    });
  }

  /**
   * Stops applying, its binlog stream kept open (events queue meanwhile):
   * resolves once nothing is being applied; rejects if it has ended.
   */
  async pause(): Promise<void> {
    const ended = await Promise.race([this.control.pause().then(() => false), this.ended.then(() => true)]);
    if (ended) throw (await this.ended) ?? new Error("catch-up stopped before the write switch");
  }

  /**
   * The write switch's drain, on the stream already open: from now on changed
   * rows are re-read from `readDatabase` (the fence), and it ends once
   * everything up to `position` is applied. `signal` (the hold's deadline)
   * stops it where it stands (the position applied so far saved).
   */
  async drainTo(readDatabase: string, position: string, signal: AbortSignal): Promise<void> {
    const onLate = (): void => this.stopper.abort(signal.reason);
    if (signal.aborted) onLate();
    else signal.addEventListener("abort", onLate, { once: true });
    try {
      this.control.readDatabase = readDatabase;
      this.control.until = position;
      this.control.resume();
      const err = await this.ended;
      if (err !== undefined) throw err;
      if (this.signal.aborted) throw this.signal.reason;
    } finally {
      signal.removeEventListener("abort", onLate);
    }
  }

  /** Stops it; resolves once it has stopped (its position saved), rejects with its failure if it had failed. */
  async stop(): Promise<void> {
    this.stopper.abort();
    const err = await this.ended;
    if (err !== undefined) throw err;
  }

  /**
   * Waits until the lag is at most `maxLagMs`: the time from reading the
   * source's position to having applied it. Gives up (throws) after
   * `timeoutMs`, or if the follower stops.
   */
  async waitForLag(source: Connection, maxLagMs: number, timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    let last = Infinity;
    for (;;) {
      const asked = performance.now();
      const target = parseGtidList(await binlogGtidPos(source));
      await this.until(() => gtidPosReaches(parseGtidList(this.applied), target), deadline);
      last = performance.now() - asked;
      if (last <= maxLagMs) return last;
      if (performance.now() > deadline) throw new CatchUpLagError(maxLagMs, last, timeoutMs);
    }
  }

  private async until(done: () => boolean, deadline: number): Promise<void> {
    for (;;) {
      if (done()) return;
      const ended = await Promise.race([this.ended.then((err) => ({ err })), this.changed(deadline)]);
      if (ended !== undefined && typeof ended === "object") {
        throw (ended.err as Error | undefined) ?? this.signal.reason ?? new Error("catch-up stopped before the write switch");
      }
      if (performance.now() > deadline && !done()) throw new CatchUpLagError(0, Infinity, 0);
    }
  }

  /** The next progress report (or the deadline). */
  private changed(deadline: number): Promise<undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(), Math.max(0, deadline - performance.now()));
      // Left behind when the follower ends first: it must not keep the command alive.
      timer.unref();
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(undefined);
      };
      this.waiters.add(done);
    });
  }
}

/** Catch-up did not get close enough to the source for the write switch to start. */
export class CatchUpLagError extends Error {
  override readonly name = "CatchUpLagError";
  constructor(maxLagMs: number, lastMs: number, waitedMs: number) {
    super(
      Number.isFinite(lastMs)
        ? `catch-up lag stayed above ${maxLagMs} ms (last ${Math.round(lastMs)} ms) for ${Math.round(waitedMs / 1000)} s: the write switch was not tried; run again when writes are lighter, or allow more with --max-lag`
        : "catch-up did not reach the source's position in time: the write switch was not tried; run again when writes are lighter",
    );
  }
}
