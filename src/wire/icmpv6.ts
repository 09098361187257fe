/**
 * ICMPv6 (RFC 4443): a typed view over a message, echo and destination-unreachable emitters.
 * The checksum covers the IPv6 pseudo-header. Emitters write only the ICMPv6 message; the
 * caller writes the IPv6 header.
 *
 * @module
 */

import { checksum, pseudoHeaderSum, sum16 } from "./checksum.ts";
import type { IcmpEchoRepr } from "./icmpv4.ts";
import { IPPROTO_ICMPV6 } from "./protocol.ts";

export type { IcmpEchoRepr } from "./icmpv4.ts";

/** Type 1: Destination Unreachable. */
export const ICMPV6_DEST_UNREACHABLE = 1;
/** Type 2: Packet Too Big. */
export const ICMPV6_PACKET_TOO_BIG = 2;
/** Type 3: Time Exceeded. */
export const ICMPV6_TIME_EXCEEDED = 3;
/** Type 128: Echo Request. */
export const ICMPV6_ECHO_REQUEST = 128;
/** Type 129: Echo Reply. */
export const ICMPV6_ECHO_REPLY = 129;

/** Destination Unreachable code 0: no route to destination. */
export const ICMPV6_UNREACH_NO_ROUTE = 0;
/** Destination Unreachable code 1: communication with destination administratively prohibited. */
export const ICMPV6_UNREACH_ADMIN_PROHIBITED = 1;
/** Destination Unreachable code 3: address unreachable. */
export const ICMPV6_UNREACH_ADDRESS = 3;
/** Destination Unreachable code 4: port unreachable. */
export const ICMPV6_UNREACH_PORT = 4;

/**
 * Most bytes of the invoking packet an ICMPv6 error carries: the whole IPv6 packet must stay
 * within the minimum MTU of 1280 (RFC 4443 section 2.4 (c)), i.e. 1280 − 40 (IPv6) − 8 (ICMPv6).
 */
export const ICMPV6_ERROR_BODY_MAX = 1232;

/**
 * A view over an ICMPv6 message (the upper-layer payload, at least 8 bytes). No accessor can
 * fail.
 *
 * @example
 * ```ts
 * import { emitIcmpv6Echo, Icmpv6Message } from "./icmpv6.ts";
 * import { parseAddress } from "./address.ts";
 * const src = parseAddress("fd00::1")!;
 * const dst = parseAddress("fd00::2")!;
 * const buf = new Uint8Array(16);
 * const n = emitIcmpv6Echo({ reply: false, identifier: 7, sequence: 1, payload: new Uint8Array(8) }, buf, src, dst);
 * const m = Icmpv6Message.view(buf.subarray(0, n))!;
 * if (m.type !== 128 || !m.verifyChecksum(src, dst)) throw new Error("unexpected");
 * ```
 */
export class Icmpv6Message {
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
   * @param buf The message: the upper-layer payload.
   * @returns The view, spanning all of `buf`, or null.
   */
  static view(buf: Uint8Array): Icmpv6Message | null {
    return buf.length < 8 ? null : new Icmpv6Message(buf);
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
   * Whether the checksum, pseudo-header included, is correct.
   *
   * @param src IPv6 source address.
   * @param dst IPv6 destination address.
   * @returns True when it verifies.
   */
  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    const b = this.bytes;
    return sum16(b, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, b.length)) === 0xffff;
  }

  /**
   * Computes the checksum, pseudo-header included, and stores it in the message.
   *
   * @param src IPv6 source address.
   * @param dst IPv6 destination address.
   */
  fillChecksum(src: Uint8Array, dst: Uint8Array): void {
    const b = this.bytes;
    this.#view.setUint16(2, 0);
    this.#view.setUint16(2, checksum(b, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, b.length)));
  }
}

/**
 * Parses an echo request or reply.
 *
 * @param m A view from {@linkcode Icmpv6Message.view}.
 * @returns The echo fields (payload is a subarray), or null when `m` is not an echo message.
 *
 * @example
 * ```ts
 * import { Icmpv6Message, parseIcmpv6Echo } from "./icmpv6.ts";
 * const m = Icmpv6Message.view(new Uint8Array([128, 0, 0, 0, 0, 1, 0, 2]))!;
 * if (parseIcmpv6Echo(m)?.sequence !== 2) throw new Error("unexpected");
 * ```
 */
export function parseIcmpv6Echo(m: Icmpv6Message): IcmpEchoRepr | null {
  const type = m.type;
  if ((type !== ICMPV6_ECHO_REQUEST && type !== ICMPV6_ECHO_REPLY) || m.code !== 0) return null;
  return {
    reply: type === ICMPV6_ECHO_REPLY,
    identifier: m.identifier,
    sequence: m.sequence,
    payload: m.body,
  };
}

/**
 * Writes an ICMPv6 echo request or reply with its checksum into `buf`.
 *
 * @param repr The echo fields.
 * @param buf The output buffer; must hold 8 + payload length bytes.
 * @param src IPv6 source address (for the pseudo-header).
 * @param dst IPv6 destination address.
 * @returns The message length, 8 + payload length.
 * @throws {RangeError} When `buf` is too short.
 *
 * @example
 * ```ts
 * import { emitIcmpv6Echo } from "./icmpv6.ts";
 * const buf = new Uint8Array(64);
 * const n = emitIcmpv6Echo({ reply: true, identifier: 1, sequence: 2, payload: new Uint8Array(4) },
 *   buf, new Uint8Array(16), new Uint8Array(16));
 * if (n !== 12) throw new Error("unexpected");
 * ```
 */
export function emitIcmpv6Echo(
  repr: IcmpEchoRepr,
  buf: Uint8Array,
  src: Uint8Array,
  dst: Uint8Array,
): number {
  const length = 8 + repr.payload.length;
  if (buf.length < length) {
    throw new RangeError(
      `Cannot emit ICMPv6 echo: needs ${length} bytes, buffer has ${buf.length}`,
    );
  }
  const m = buf.length === length ? buf : buf.subarray(0, length);
  m[0] = repr.reply ? ICMPV6_ECHO_REPLY : ICMPV6_ECHO_REQUEST;
  m[1] = 0;
  m[2] = 0;
  m[3] = 0;
  m[4] = (repr.identifier >> 8) & 0xff;
  m[5] = repr.identifier & 0xff;
  m[6] = (repr.sequence >> 8) & 0xff;
  m[7] = repr.sequence & 0xff;
  m.set(repr.payload, 8);
  _fill(m, src, dst);
  return length;
}

/**
 * Writes an ICMPv6 Destination Unreachable message: the 8-byte header (unused field zero)
 * followed by as much of the invoking IPv6 packet as fits both in
 * {@linkcode ICMPV6_ERROR_BODY_MAX} bytes (so the whole IPv6 packet stays within 1280 bytes)
 * and in `buf`, with the checksum over the pseudo-header.
 *
 * @param code The code, e.g. {@linkcode ICMPV6_UNREACH_PORT}.
 * @param invoking The IPv6 packet that caused the error, from its IPv6 header on.
 * @param buf The output buffer, at least 8 bytes.
 * @param src Source address of the IPv6 packet that will carry this message.
 * @param dst Its destination address (the invoking packet's source).
 * @returns The message length.
 * @throws {RangeError} When `buf` is shorter than 8 bytes.
 *
 * @example
 * ```ts
 * import { emitIcmpv6Unreachable, ICMPV6_UNREACH_PORT } from "./icmpv6.ts";
 * const buf = new Uint8Array(1500);
 * const n = emitIcmpv6Unreachable(ICMPV6_UNREACH_PORT, new Uint8Array(1400), buf,
 *   new Uint8Array(16), new Uint8Array(16));
 * if (n !== 8 + 1232) throw new Error("unexpected");
 * ```
 */
export function emitIcmpv6Unreachable(
  code: number,
  invoking: Uint8Array,
  buf: Uint8Array,
  src: Uint8Array,
  dst: Uint8Array,
): number {
  if (buf.length < 8) throw new RangeError("Cannot emit ICMPv6 error: buffer shorter than 8");
  const body = Math.min(invoking.length, ICMPV6_ERROR_BODY_MAX, buf.length - 8);
  const m = buf.subarray(0, 8 + body);
  m[0] = ICMPV6_DEST_UNREACHABLE;
  m[1] = code;
  m[2] =
    m[3] =
    m[4] =
    m[5] =
    m[6] =
    m[7] =
      0;
  m.set(invoking.subarray(0, body), 8);
  _fill(m, src, dst);
  return 8 + body;
}

/** Fills the checksum over the pseudo-header and the whole message. */
function _fill(m: Uint8Array, src: Uint8Array, dst: Uint8Array): void {
  const c = checksum(m, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, m.length));
  m[2] = c >> 8;
  m[3] = c & 0xff;
}
