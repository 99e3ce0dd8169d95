// Admission in front of one member's connection pool. mysql2's pool queues
// without a time limit; this bounds both the queue and the wait, so an
// overloaded member answers at once (ResourceExhausted) or soon (Unavailable)
// instead of piling up callers behind it.
import { DB_ACQUIRE_TIMEOUT, DB_OVERLOADED, DB_UNAVAILABLE } from "../errors.js";

export type LimiterErrorCode = typeof DB_OVERLOADED | typeof DB_ACQUIRE_TIMEOUT | typeof DB_UNAVAILABLE;

export class LimiterError extends Error {
  override readonly name = "LimiterError";
  constructor(
    readonly code: LimiterErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Returned by acquire; calling it more than once is harmless. */
export type Release = () => void;

interface Waiter {
  grant(release: Release): void;
  fail(err: LimiterError): void;
}

export interface LimiterOptions {
  /** Slots (connections) that may be held at once. */
  readonly capacity: number;
  /** Callers that may wait for a slot; the next one fails with CHIRP_DB_OVERLOADED. */
  readonly queueLimit: number;
  /** Called after every change of `active` or `waiting` (metrics). */
  readonly onChange?: (active: number, waiting: number) => void;
}

export class Limiter {
  #active = 0;
  readonly #queue: Waiter[] = [];
  #closed: LimiterError | undefined;
  #idle: (() => void)[] = [];

  constructor(private readonly opts: LimiterOptions) {
    if (!Number.isInteger(opts.capacity) || opts.capacity < 1) throw new RangeError("capacity must be a positive integer");
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /** A slot, or a LimiterError: queue full, `timeoutMs` passed, or closed. */
  acquire(timeoutMs: number): Promise<Release> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (this.#active < this.opts.capacity && this.#queue.length === 0) {
      this.#active++;
      this.#changed();
      return Promise.resolve(this.#releaser());
    }
    if (this.#queue.length >= this.opts.queueLimit) {
      return Promise.reject(new LimiterError(DB_OVERLOADED, `${this.#queue.length} statements already waiting`));
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        grant: (release) => {
          clearTimeout(timer);
          resolve(release);
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        this.#changed();
        reject(new LimiterError(DB_ACQUIRE_TIMEOUT, `no connection free within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#queue.push(waiter);
      this.#changed();
    });
  }

  /** Resolves once nothing holds or waits for a slot (used to drain before closing a pool). */
  whenIdle(): Promise<void> {
    if (this.#active === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Fails every waiter and every later acquire; holders keep their slots until they release. */
  close(message = "member closed"): void {
    if (this.#closed) return;
    this.#closed = new LimiterError(DB_UNAVAILABLE, message);
    for (const w of this.#queue.splice(0)) w.fail(this.#closed);
    this.#changed();
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      // The slot passes straight to the next waiter: `active` stays the same.
      if (next) next.grant(this.#releaser());
      else this.#active--;
      this.#changed();
    };
  }

  #changed(): void {
    this.opts.onChange?.(this.#active, this.#queue.length);
    if (this.#active === 0 && this.#queue.length === 0 && this.#idle.length > 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }
}
