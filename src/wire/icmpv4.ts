/**
 * ICMP for IPv4 (RFC 792): a typed view over a message, echo and destination-unreachable
 * emitters. Emitters write only the ICMP message; the caller writes the IP header.
 *
 * @module
 */

import { checksum } from "./checksum.ts";

/** Type 0: Echo Reply. */
export const ICMPV4_ECHO_REPLY = 0;
/** Type 3: Destination Unreachable. */
export const ICMPV4_DEST_UNREACHABLE = 3;
/** Type 8: Echo Request. */
export const ICMPV4_ECHO_REQUEST = 8;
/** Type 11: Time Exceeded. */
export const ICMPV4_TIME_EXCEEDED = 11;

/** Destination Unreachable code 0: net unreachable. */
export const ICMPV4_UNREACH_NET = 0;
/** Destination Unreachable code 1: host unreachable. */
export const ICMPV4_UNREACH_HOST = 1;
/** Destination Unreachable code 2: protocol unreachable. */
export const ICMPV4_UNREACH_PROTOCOL = 2;
/** Destination Unreachable code 3: port unreachable. */
export const ICMPV4_UNREACH_PORT = 3;
/** Destination Unreachable code 13: communication administratively prohibited (RFC 1812). */
export const ICMPV4_UNREACH_ADMIN_PROHIBITED = 13;

/**
 * Most bytes of the invoking packet an ICMPv4 error carries: the whole IP datagram must stay
 * within 576 bytes (RFC 1812 section 4.3.2.3), i.e. 576 − 20 (IP) − 8 (ICMP).
 */
export const ICMPV4_ERROR_BODY_MAX = 548;

/**
 * A view over an ICMPv4 message (the IP payload, at least 8 bytes). No accessor can fail.
 *
 * @example
 * ```ts
 * import { emitIcmpv4Echo, Icmpv4Message, ICMPV4_ECHO_REQUEST } from "./icmpv4.ts";
 * const buf = new Uint8Array(16);
 * const n = emitIcmpv4Echo({ reply: false, identifier: 7, sequence: 1, payload: new Uint8Array(8) }, buf);
 * const m = Icmpv4Message.view(buf.subarray(0, n))!;
 * if (m.type !== ICMPV4_ECHO_REQUEST || m.identifier !== 7 || !m.verifyChecksum()) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export class Icmpv4Message {
  /** The whole message. */
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Makes a view over `buf`, or returns null when it is shorter than 8 bytes. Never throws.
   *
   * @param buf The message: the IP payload.
   * @returns The view, spanning all of `buf`, or null.
   */
  static view(buf: Uint8Array): Icmpv4Message | null {
    return buf.length < 8 ? null : new Icmpv4Message(buf);
  }

  /** Type. */
  get type(): number {
    return this.bytes[0];
  }

  /** Code. */
  get code(): number {
    return this.bytes[1];
  }

  /** Checksum field. */
  get checksum(): number {
    return this.#view.getUint16(2);
  }

  /** Sets the checksum field. */
  set checksum(value: number) {
    this.#view.setUint16(2, value);
  }

  /** Identifier (bytes 4-5; meaningful for echo messages). */
  get identifier(): number {
    return this.#view.getUint16(4);
  }

  /** Sets the identifier (the checksum is not updated). */
  set identifier(value: number) {
    this.#view.setUint16(4, value);
  }

  /** Sequence number (bytes 6-7; meaningful for echo messages). */
  get sequence(): number {
    return this.#view.getUint16(6);
  }

  /** Bytes 8 onward: echo data, or the invoking packet of an error (a subarray). */
  get body(): Uint8Array {
    return this.bytes.subarray(8);
  }

  /**
   * Whether the checksum over the whole message is correct.
   *
   * @returns True when it verifies.
   */
  verifyChecksum(): boolean {
    return checksum(this.bytes) === 0;
  }

  /** Computes the checksum and stores it in the message. */
  fillChecksum(): void {
    this.#view.setUint16(2, 0);
    this.#view.setUint16(2, checksum(this.bytes));
  }
}

/** An ICMP echo request or reply (both ICMPv4 and ICMPv6). */
export interface IcmpEchoRepr {
  /** True for Echo Reply, false for Echo Request. */
  reply: boolean;
  /** Identifier. */
  identifier: number;
  /** Sequence number. */
  sequence: number;
  /** Echo data. */
  payload: Uint8Array;
}

/**
 * Parses an echo request or reply.
 *
 * @param m A view from {@linkcode Icmpv4Message.view}.
 * @returns The echo fields (payload is a subarray), or null when `m` is not an echo message.
 *
 * @example
 * ```ts
 * import { Icmpv4Message, parseIcmpv4Echo } from "./icmpv4.ts";
 * const m = Icmpv4Message.view(new Uint8Array([0, 0, 0xff, 0xfe, 0, 1, 0, 0]))!;
 * if (parseIcmpv4Echo(m)?.reply !== true) throw new Error("unexpected");
 * ```
 */
export function parseIcmpv4Echo(m: Icmpv4Message): IcmpEchoRepr | null {
  const type = m.type;
  if ((type !== ICMPV4_ECHO_REQUEST && type !== ICMPV4_ECHO_REPLY) || m.code !== 0) return null;
  return {
    reply: type === ICMPV4_ECHO_REPLY,
    identifier: m.identifier,
    sequence: m.sequence,
    payload: m.body,
  };
}

/**
 * Writes an ICMPv4 echo request or reply with its checksum into `buf`.
 *
 * @param repr The echo fields.
 * @param buf The output buffer; must hold 8 + payload length bytes.
 * @returns The message length, 8 + payload length.
 * @throws {RangeError} When `buf` is too short.
 *
 * @example
 * ```ts
 * import { emitIcmpv4Echo } from "./icmpv4.ts";
 * const buf = new Uint8Array(64);
 * const n = emitIcmpv4Echo({ reply: true, identifier: 1, sequence: 2, payload: new Uint8Array(4) }, buf);
 * if (n !== 12) throw new Error("unexpected");
 * ```
 */
export function emitIcmpv4Echo(repr: IcmpEchoRepr, buf: Uint8Array): number {
  const length = 8 + repr.payload.length;
  if (buf.length < length) {
    throw new RangeError(
      `Cannot emit ICMPv4 echo: needs ${length} bytes, buffer has ${buf.length}`,
    );
  }
  const m = buf.length === length ? buf : buf.subarray(0, length);
  _header(m, repr.reply ? ICMPV4_ECHO_REPLY : ICMPV4_ECHO_REQUEST, 0);
  m[4] = (repr.identifier >> 8) & 0xff;
  m[5] = repr.identifier & 0xff;
  m[6] = (repr.sequence >> 8) & 0xff;
  m[7] = repr.sequence & 0xff;
  m.set(repr.payload, 8);
  _fill(m);
  return length;
}

/**
 * Writes an ICMPv4 Destination Unreachable message: the 8-byte header (unused field zero)
 * followed by as much of the invoking IP packet as fits both in {@linkcode ICMPV4_ERROR_BODY_MAX}
 * bytes (so the whole IP datagram stays within 576 bytes) and in `buf`.
 *
 * @param code The code, e.g. {@linkcode ICMPV4_UNREACH_PORT}.
 * @param invoking The IP packet that caused the error, from its IP header on.
 * @param buf The output buffer, at least 8 bytes.
 * @returns The message length.
 * @throws {RangeError} When `buf` is shorter than 8 bytes.
 *
 * @example
 * ```ts
 * import { emitIcmpv4Unreachable, ICMPV4_UNREACH_PORT } from "./icmpv4.ts";
 * const buf = new Uint8Array(1500);
 * const n = emitIcmpv4Unreachable(ICMPV4_UNREACH_PORT, new Uint8Array(1000), buf);
 * if (n !== 8 + 548) throw new Error("unexpected");
 * ```
 */
export function emitIcmpv4Unreachable(
  code: number,
  invoking: Uint8Array,
  buf: Uint8Array,
): number {
  if (buf.length < 8) throw new RangeError("Cannot emit ICMPv4 error: buffer shorter than 8");
  const body = Math.min(invoking.length, ICMPV4_ERROR_BODY_MAX, buf.length - 8);
  const m = buf.subarray(0, 8 + body);
  _header(m, ICMPV4_DEST_UNREACHABLE, code);
  m[4] =
    m[5] =
    m[6] =
    m[7] =
      0;
  m.set(invoking.subarray(0, body), 8);
  _fill(m);
  return 8 + body;
}

/** Writes type and code, zeroes the checksum. */
function _header(m: Uint8Array, type: number, code: number): void {
  m[0] = type;
  m[1] = code;
  m[2] = 0;
  m[3] = 0;
}

/** Fills the checksum over the whole message. */
function _fill(m: Uint8Array): void {
  const c = checksum(m);
  m[2] = c >> 8;
  m[3] = c & 0xff;
}
