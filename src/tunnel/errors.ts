/**
 * Errors the tunnel raises. Callers catch these by class: a {@linkcode ProtocolError} means the
 * peer (or the bytes on the wire) broke the protocol, a {@linkcode StreamResetError} that one
 * stream was aborted, a {@linkcode SessionClosedError} that the whole session has ended.
 *
 * @module
 */

/** GoAway error codes from the yamux specification. */
export const GoAwayCode = {
  /** Normal termination. */
  Normal: 0,
  /** The peer broke the protocol. */
  ProtocolError: 1,
  /** Something went wrong inside the sender. */
  InternalError: 2,
} as const;

/**
 * The bytes received break the protocol. The message names what broke; `code` is the GoAway
 * code the session sends before it closes.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "./errors.ts";
 * const e = new ProtocolError("decode frame: unknown type 9");
 * if (e.code !== 1) throw new Error("unexpected");
 * ```
 */
export class ProtocolError extends Error {
  /** GoAway code to send for this error (default 1, protocol error). */
  readonly code: number;
  constructor(message: string, code: number = GoAwayCode.ProtocolError) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/**
 * A stream was reset (RST), by the peer or locally; reads and writes on it reject with this.
 *
 * @example
 * ```ts
 * import { StreamResetError } from "./errors.ts";
 * const e = new StreamResetError("read stream 3: reset by peer");
 * if (!(e instanceof Error)) throw new Error("unexpected");
 * ```
 */
export class StreamResetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StreamResetError";
  }
}

/**
 * The session has ended (or is going away); `cause` holds what ended it, when known.
 *
 * @example
 * ```ts
 * import { SessionClosedError } from "./errors.ts";
 * const e = new SessionClosedError("open stream: session closed");
 * if (e.name !== "SessionClosedError") throw new Error("unexpected");
 * ```
 */
export class SessionClosedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SessionClosedError";
  }
}
