/** Where the flow engine's protocol logic gets the time from; tests pass a fake one. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

/** The real monotonic clock. */
export const systemClock: Clock = { now: () => performance.now() };
