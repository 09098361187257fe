/**
 * The yamux frame: a 12-byte big-endian header (version, type, flags, stream id, length),
 * followed by `length` payload bytes for Data frames only. For WindowUpdate the length is the
 * window delta, for Ping the opaque value, for GoAway the error code, for kconnect's Ack (resumable
 * sessions only) the low 32 bits of a received offset.
 *
 * @module
 */

/** Protocol version carried in every header. */
export const VERSION = 0;

/** Bytes in a frame header. */
export const HEADER_LENGTH = 12;

/** Initial per-stream window every peer assumes, from the specification (256 KiB). */
export const SPEC_INITIAL_WINDOW = 256 * 1024;

/** Frame types. */
export const FrameType = {
  /** Stream data; `length` payload bytes follow. */
  Data: 0,
  /** Grants the peer `length` more bytes of send window on a stream. */
  WindowUpdate: 1,
  /** Session-level ping; `length` is an opaque value echoed back. */
  Ping: 2,
  /** The session is going away; `length` is the error code. */
  GoAway: 3,
  /**
   * kconnect's extension, only in resumable sessions (never sent to a plain yamux peer): the
   * sender has received the session's byte stream up to `length` (the low 32 bits of the
   * offset), so the peer may forget what it kept to send again. Stream 0, no flags.
   */
  Ack: 4,
} as const;

/** A frame type value. */
export type FrameType = typeof FrameType[keyof typeof FrameType];

/** Frame flags (bits of the 16-bit flags field). */
export const Flag = {
  /** Opens a stream (or, on a Ping, asks for an answer). */
  SYN: 1,
  /** Acknowledges a stream (or, on a Ping, is the answer). */
  ACK: 2,
  /** Half-closes the sender's direction of a stream. */
  FIN: 4,
  /** Aborts a stream. */
  RST: 8,
} as const;

/** A decoded frame. */
export interface Frame {
  /** Frame type. */
  type: FrameType;
  /** Flags, an OR of {@linkcode Flag} values. */
  flags: number;
  /** Stream id; 0 for Ping and GoAway. */
  streamId: number;
  /** Payload length (Data), window delta (WindowUpdate), opaque value (Ping), code (GoAway). */
  length: number;
  /**
   * Payload of a Data frame (empty otherwise). Unless `owned` is true it is a view into the
   * decoder's input, valid only until the next `push()`.
   */
  data: Uint8Array;
  /** True when `data` is a buffer of its own that the receiver may keep. */
  owned: boolean;
  /**
   * True on a piece of a Data frame whose payload goes on in the next Data frame the decoder
   * yields (see `Decoder`): `length` is then the piece's length, not the frame's.
   */
  partial?: boolean;
}

/**
 * Writes a frame header into `buf` at `offset`.
 *
 * @example
 * ```ts
 * import { Flag, FrameType, writeHeader } from "./frame.ts";
 * const buf = new Uint8Array(12);
 * writeHeader(buf, 0, FrameType.WindowUpdate, Flag.SYN, 1, 0);
 * if (buf[1] !== 1 || buf[3] !== 1 || buf[7] !== 1) throw new Error("unexpected");
 * ```
 */
export function writeHeader(
  buf: Uint8Array,
  offset: number,
  type: FrameType,
  flags: number,
  streamId: number,
  length: number,
): void {
  buf[offset] = VERSION;
  buf[offset + 1] = type;
  buf[offset + 2] = flags >>> 8;
  buf[offset + 3] = flags & 0xff;
  buf[offset + 4] = streamId >>> 24;
  buf[offset + 5] = (streamId >>> 16) & 0xff;
  buf[offset + 6] = (streamId >>> 8) & 0xff;
  buf[offset + 7] = streamId & 0xff;
  buf[offset + 8] = length >>> 24;
  buf[offset + 9] = (length >>> 16) & 0xff;
  buf[offset + 10] = (length >>> 8) & 0xff;
  buf[offset + 11] = length & 0xff;
}

/**
 * Encodes one whole frame (header and, for Data, the payload) into a new buffer. For tests and
 * rarely sent frames; the session writes headers straight into its batch buffer.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameType } from "./frame.ts";
 * const bytes = encodeFrame(FrameType.Data, 0, 3, new Uint8Array([1, 2]));
 * if (bytes.length !== 14 || bytes[11] !== 2) throw new Error("unexpected");
 * ```
 */
export function encodeFrame(
  type: FrameType,
  flags: number,
  streamId: number,
  dataOrLength: Uint8Array | number = 0,
): Uint8Array {
  if (typeof dataOrLength === "number") {
    const out = new Uint8Array(HEADER_LENGTH);
    writeHeader(out, 0, type, flags, streamId, dataOrLength);
    return out;
  }
  const out = new Uint8Array(HEADER_LENGTH + dataOrLength.length);
  writeHeader(out, 0, type, flags, streamId, dataOrLength.length);
  out.set(dataOrLength, HEADER_LENGTH);
  return out;
}
