/**
 * Where protocol logic (the flow engine, the DNS server, local address checks) gets the time
 * from; tests pass a fake one.
 *
 * @module
 */

/** A source of monotonic time. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

/** The real monotonic clock. */
export const systemClock: Clock = { now: () => performance.now() };
