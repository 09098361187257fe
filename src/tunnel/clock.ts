/**
 * Where the tunnel's drivers (`Session`, `SessionPool`, the memory pipe) get the time and their
 * timers from. The protocol state (`SessionCore`) never reads a clock: it is handed `now` and
 * answers with deadlines, and the driver arms one timer for the earliest. Tests pass a fake
 * clock and run on simulated time.
 *
 * @module
 */
import type { Clock as MonotonicClock } from "../stack/clock.ts";

/** A monotonic clock with one-shot timers. */
export interface Clock extends MonotonicClock {
  /** Calls `fn` once, `ms` from now; returns an id for {@linkcode Clock.clearTimer}. */
  setTimer(fn: () => void, ms: number): number;
  /** Cancels a timer that has not fired yet (an unknown or fired id is ignored). */
  clearTimer(id: number): void;
}

/**
 * The real clock: `performance.now()` and `setTimeout`.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * const id = systemClock.setTimer(() => {}, 1000);
 * systemClock.clearTimer(id);
 * if (!(systemClock.now() > 0)) throw new Error("unexpected");
 * ```
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  // Deno's timer ids are numbers (the Node typings in scope say otherwise).
  setTimer: (fn, ms) => setTimeout(fn, ms) as unknown as number,
  clearTimer: (id) => clearTimeout(id),
};
