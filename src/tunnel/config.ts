/**
 * Session options and their defaults.
 *
 * @module
 */
import type { TimerClock as Clock } from "../io/clock.ts";
import { SPEC_INITIAL_WINDOW } from "./frame.ts";

/** Options for a {@linkcode Session}. */
export interface SessionOptions {
  /** True on the side that dialled: it opens odd stream ids; the other side even ones. */
  client: boolean;
  /** Per-stream receive window to start with, bytes. At least 256 KiB (the spec's). Default 256 KiB. */
  initialWindow?: number;
  /** Largest per-stream receive window auto-tuning may grow to, bytes. Default 32 MiB. */
  maxWindow?: number;
  /**
   * Concurrent streams (both directions). An inbound SYN past it is answered with RST; `open()`
   * past it rejects. Default 8192 (a laptop's two transports hold 10,000 connections and more).
   */
  maxStreams?: number;
  /**
   * Longest Data frame accepted, bytes; a longer one (or one beyond the stream's window) is a
   * protocol error. Default 1 MiB.
   */
  maxFrameSize?: number;
  /** Inbound streams not yet accepted; one more is answered with RST. Default 256. */
  acceptBacklog?: number;
  /**
   * Ping every this many ms and close the session when no answer arrives within
   * `keepaliveTimeoutMs`. 0 turns keepalive off. Default 0.
   */
  keepaliveIntervalMs?: number;
  /** How long a keepalive ping may go unanswered, ms. Default 10000. */
  keepaliveTimeoutMs?: number;
  /** A transport write that takes longer than this closes the session, ms. Default 30000. */
  writeTimeoutMs?: number;
  /**
   * A resumable session (kconnect's extension; both sides must agree, see `resume.ts`): each
   * side acknowledges the byte stream it received (Ack frames) and keeps what it sent until
   * acknowledged, so the session can go on over a new transport after the old one is lost
   * (`SessionCore.detach`, `SessionCore.resume`). A lost transport then detaches the session
   * instead of ending it. Default false: plain yamux.
   */
  resumable?: boolean;
  /**
   * In a resumable session, the most unacknowledged bytes kept to send again; at this, no more
   * Data frames are sent until an Ack arrives (control frames still are). Default 16 MiB.
   */
  retainLimit?: number;
  /**
   * Where the session's driver gets the time and its timers from. Default the system clock;
   * tests pass a fake one. Not part of the resolved options (the protocol core reads no clock).
   */
  clock?: Clock;
}

/** {@linkcode SessionOptions} with every default filled in (and without the clock). */
export type ResolvedSessionOptions = Required<Omit<SessionOptions, "clock">>;

/** Defaults for every optional field of {@linkcode SessionOptions}. */
export const DEFAULT_SESSION_OPTIONS: Readonly<Omit<ResolvedSessionOptions, "client">> = {
  initialWindow: SPEC_INITIAL_WINDOW,
  maxWindow: 32 * 1024 * 1024,
  maxStreams: 8192,
  maxFrameSize: 1024 * 1024,
  acceptBacklog: 256,
  keepaliveIntervalMs: 0,
  keepaliveTimeoutMs: 10000,
  writeTimeoutMs: 30000,
  resumable: false,
  retainLimit: 16 * 1024 * 1024,
};

/**
 * Fills in defaults and checks ranges; throws RangeError naming the bad field.
 *
 * @example
 * ```ts
 * import { resolveSessionOptions } from "./config.ts";
 * const o = resolveSessionOptions({ client: true });
 * if (o.initialWindow !== 262144) throw new Error("unexpected");
 * ```
 */
export function resolveSessionOptions(options: SessionOptions): ResolvedSessionOptions {
  const o: ResolvedSessionOptions = { ...DEFAULT_SESSION_OPTIONS, client: options.client };
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && k !== "clock") (o as unknown as Record<string, unknown>)[k] = v;
  }
  const int = (name: keyof ResolvedSessionOptions, min: number, max: number) => {
    const v = o[name] as number;
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new RangeError(
        `session options: ${name} must be an integer in [${min}, ${max}], got ${v}`,
      );
    }
  };
  const U32 = 0xffffffff;
  int("initialWindow", SPEC_INITIAL_WINDOW, U32);
  int("maxWindow", o.initialWindow, U32);
  int("maxStreams", 1, 1 << 30);
  int("maxFrameSize", 1, U32);
  int("acceptBacklog", 0, 1 << 30);
  int("keepaliveIntervalMs", 0, 2 ** 31 - 1);
  int("keepaliveTimeoutMs", 1, 2 ** 31 - 1);
  int("writeTimeoutMs", 1, 2 ** 31 - 1);
  // Below the 2^31 an Ack's 32 bits tell apart, and at least one whole Data frame.
  int("retainLimit", 128 * 1024, 2 ** 31 - 1);
  if (typeof o.resumable !== "boolean") {
    throw new RangeError(`session options: resumable must be a boolean, got ${o.resumable}`);
  }
  return o;
}
