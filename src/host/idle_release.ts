/**
 * Gives memory back once the traffic stops.
 *
 * Bulk traffic leaves a long-running process holding memory it no longer uses: buffers of
 * relayed data that died in V8's old generation (their bytes live outside the heap, so an idle
 * heap never grows enough to collect them), and free pages the allocator keeps for the next
 * send (`keepAllocatorPages`). On the laptop, after one upload, one download and eight streams
 * through `kconnect up`, the client stayed at 149–180 MB for a minute of quiet, against 79 MB
 * before the traffic (`Deno.memoryUsage().external` 45 MB of it). An {@linkcode IdleRelease}
 * samples a traffic counter and, once per quiet spell that follows traffic, runs a full
 * collection and `malloc_trim` ({@linkcode releaseMemory}). Nothing runs while traffic flows,
 * nor again and again while idle.
 *
 * @module
 */
import { systemClock, type TimerClock } from "../io/clock.ts";
import { releaseAllocatorPages } from "./allocator.ts";

/** How often the traffic counter is sampled by default, ms. */
export const IDLE_CHECK_MS = 10_000;
/** Less than this many bytes in a period is quiet, by default (a bulk burst moves far more). */
export const QUIET_BELOW = 1024 * 1024;

/** Options of {@linkcode IdleRelease}. */
export interface IdleReleaseOptions {
  /** A count that changes while there is traffic (bytes moved, say). */
  activity: () => number;
  /** Frees what it can; called once for each quiet spell that follows traffic. */
  release: () => void;
  /** Sampling period, ms: traffic is over once the count has moved less than `quietBelow` in one. */
  intervalMs?: number;
  /**
   * A period in which the count moves less than this is quiet (keepalives and the odd DNS query
   * are not traffic). Default {@linkcode QUIET_BELOW}.
   */
  quietBelow?: number;
  /** Default {@linkcode systemClock}. */
  clock?: TimerClock;
}

/**
 * Calls `release` when the traffic counter stops moving after it moved: at most once per quiet
 * spell, between one and two periods after the last traffic. A period counts as traffic when the
 * counter moved by at least `quietBelow`. Stops with `[Symbol.dispose]()`.
 *
 * @example
 * ```ts
 * import { IdleRelease } from "./idle_release.ts";
 * let bytes = 0;
 * using idle = new IdleRelease({ activity: () => bytes, release: () => {}, intervalMs: 5_000 });
 * bytes += 64 << 20; // traffic: within two periods after it stops, release() runs once
 * ```
 */
export class IdleRelease implements Disposable {
  /** Times `release` was called. */
  releases = 0;
  readonly #o: Required<IdleReleaseOptions>;
  #last: number;
  #busy = false;
  #timer: number | null = null;

  constructor(options: IdleReleaseOptions) {
    this.#o = {
      intervalMs: IDLE_CHECK_MS,
      quietBelow: QUIET_BELOW,
      clock: systemClock,
      ...options,
    };
    this.#last = options.activity();
    this.#arm();
  }

  #arm(): void {
    this.#timer = this.#o.clock.setTimer(() => this.#check(), this.#o.intervalMs);
  }

  #check(): void {
    const now = this.#o.activity();
    // A count may also go down (a counted session ended): the size of the change is what counts.
    const moved = Math.abs(now - this.#last);
    this.#last = now;
    if (moved >= this.#o.quietBelow) this.#busy = true;
    else if (this.#busy) {
      this.#busy = false;
      this.releases++;
      this.#o.release();
    }
    this.#arm();
  }

  [Symbol.dispose](): void {
    if (this.#timer !== null) this.#o.clock.clearTimer(this.#timer);
    this.#timer = null;
  }
}

/**
 * A full garbage collection (where V8's `gc` is exposed: `--expose-gc` is among the laptop
 * binary's V8 flags, `src/v8_flags.ts`), then glibc's `malloc_trim(0)` (where there is glibc and
 * FFI). Either is skipped where it is not available.
 *
 * @example
 * ```ts
 * import { releaseMemory } from "./idle_release.ts";
 * const done: string[] = [];
 * releaseMemory(() => done.push("gc"), () => (done.push("trim"), true));
 * if (done.join() !== "gc,trim") throw new Error("expected a collection, then the trim");
 * ```
 */
export function releaseMemory(
  gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc,
  trim: () => boolean = () => releaseAllocatorPages(),
): void {
  gc?.();
  trim();
}
