/**
 * ICMPv6 (RFC 4443): a typed view over a message, echo and destination-unreachable emitters.
 * Emitters write only the ICMPv6 message; the caller writes the IPv6 header. The layout shared
 * with ICMPv4 lives in `icmp.ts`; what is ICMPv6's own is here: the type and code numbers, a
 * checksum that covers the IPv6 pseudo-header, and the 1280-byte limit on errors.
 *
 * @module
 */

import { pseudoHeaderSum } from "./checksum.ts";
import {
  emitIcmpEcho,
  emitIcmpQuoting,
  icmpChecksumVerifies,
  type IcmpEchoRepr,
  type IcmpEchoTypes,
  IcmpMessage,
  parseIcmpEcho,
  storeIcmpChecksum,
} from "./icmp.ts";
import { IPPROTO_ICMPV6 } from "./protocol.ts";

export type { IcmpEchoRepr } from "./icmp.ts";

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
 * fail; the fields are {@linkcode IcmpMessage}'s, the checksum methods take the addresses of
 * the pseudo-header.
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
export class Icmpv6Message extends IcmpMessage {
  private constructor(bytes: Uint8Array) {
    super(bytes);
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

  /**
   * Whether the checksum, pseudo-header included, is correct.
   *
   * @param src IPv6 source address.
   * @param dst IPv6 destination address.
   * @returns True when it verifies.
   */
  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    const b = this.bytes;
    return icmpChecksumVerifies(b, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, b.length));
  }

  /**
   * Computes the checksum, pseudo-header included, and stores it in the message.
   *
   * @param src IPv6 source address.
   * @param dst IPv6 destination address.
   */
  fillChecksum(src: Uint8Array, dst: Uint8Array): void {
    _fill(this.bytes, src, dst);
  }
}

const ECHO: IcmpEchoTypes = { request: ICMPV6_ECHO_REQUEST, reply: ICMPV6_ECHO_REPLY };

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
  return parseIcmpEcho(m, ECHO);
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
  const m = emitIcmpEcho(repr, ECHO, buf, "ICMPv6");
  _fill(m, src, dst);
  return m.length;
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
  const m = emitIcmpQuoting(
    ICMPV6_DEST_UNREACHABLE,
    code,
    invoking,
    ICMPV6_ERROR_BODY_MAX,
    buf,
    "ICMPv6",
  );
  _fill(m, src, dst);
  return m.length;
}

/** Fills the checksum over the pseudo-header and the whole message. */
function _fill(m: Uint8Array, src: Uint8Array, dst: Uint8Array): void {
  storeIcmpChecksum(m, pseudoHeaderSum(src, dst, IPPROTO_ICMPV6, m.length));
}
