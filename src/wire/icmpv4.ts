/**
 * ICMP for IPv4 (RFC 792): a typed view over a message, echo and destination-unreachable
 * emitters. Emitters write only the ICMP message; the caller writes the IP header. The layout
 * shared with ICMPv6 lives in `icmp.ts`; what is ICMPv4's own is here: the type and code
 * numbers, a checksum over the message alone, and the 576-byte limit on errors.
 *
 * @module
 */

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

export type { IcmpEchoRepr } from "./icmp.ts";

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
 * A view over an ICMPv4 message (the IP payload, at least 8 bytes). No accessor can fail; the
 * fields are {@linkcode IcmpMessage}'s.
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
export class Icmpv4Message extends IcmpMessage {
  private constructor(bytes: Uint8Array) {
    super(bytes);
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

  /**
   * Whether the checksum over the whole message is correct.
   *
   * @returns True when it verifies.
   */
  verifyChecksum(): boolean {
    return icmpChecksumVerifies(this.bytes, 0);
  }

  /** Computes the checksum and stores it in the message. */
  fillChecksum(): void {
    storeIcmpChecksum(this.bytes, 0);
  }
}

const ECHO: IcmpEchoTypes = { request: ICMPV4_ECHO_REQUEST, reply: ICMPV4_ECHO_REPLY };

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
  return parseIcmpEcho(m, ECHO);
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
  const m = emitIcmpEcho(repr, ECHO, buf, "ICMPv4");
  storeIcmpChecksum(m, 0);
  return m.length;
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
  const m = emitIcmpQuoting(
    ICMPV4_DEST_UNREACHABLE,
    code,
    invoking,
    ICMPV4_ERROR_BODY_MAX,
    buf,
    "ICMPv4",
  );
  storeIcmpChecksum(m, 0);
  return m.length;
}
