/**
 * Where protocol logic gets the time from, and drivers their timers: the flow engine, the DNS
 * server and local address checks read a {@linkcode Clock}; the tunnel's drivers (`Session`,
 * `SessionPool`, the memory pipe) also arm timers through a {@linkcode TimerClock}. The yamux
 * state itself (`SessionCore`) never reads a clock: it is handed `now` and answers with
 * deadlines. Tests pass fake clocks and run on simulated time.
 *
 * @module
 */

/** A source of monotonic time. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

/** A monotonic clock with one-shot timers. */
export interface TimerClock extends Clock {
  /** Calls `fn` once, `ms` from now; returns an id for {@linkcode TimerClock.clearTimer}. */
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
export const systemClock: TimerClock = {
  now: () => performance.now(),
  // Deno's timer ids are numbers (the Node typings in scope say otherwise).
  setTimer: (fn, ms) => setTimeout(fn, ms) as unknown as number,
  clearTimer: (id) => clearTimeout(id),
};
