/**
 * The ICMP message layout both families share (RFC 792, RFC 4443 section 2.1): type, code,
 * checksum, four bytes whose meaning depends on the type (identifier and sequence number for
 * echo, unused for destination unreachable), then the body. `icmpv4.ts` and `icmpv6.ts` build
 * on it with their own type numbers, checksum (ICMPv6's covers the IPv6 pseudo-header) and
 * limit on how much of the invoking packet an error quotes.
 *
 * @module
 */

import { checksum, sum16 } from "./checksum.ts";

/**
 * A view over an ICMP message of either family (the IP payload, at least 8 bytes). No accessor
 * can fail. Made through `Icmpv4Message.view` or `Icmpv6Message.view`, which add the family's
 * checksum methods.
 */
export abstract class IcmpMessage {
  /** The whole message. */
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  /** @param bytes The message, at least 8 bytes (the caller checks). */
  protected constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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

/** A family's echo type numbers. */
export interface IcmpEchoTypes {
  /** Echo Request type (8 in ICMPv4, 128 in ICMPv6). */
  request: number;
  /** Echo Reply type (0 in ICMPv4, 129 in ICMPv6). */
  reply: number;
}

/**
 * Parses an echo request or reply, given the family's echo type numbers.
 *
 * @param m A message view.
 * @param types The family's Echo Request and Echo Reply types.
 * @returns The echo fields (payload is a subarray), or null when `m` is not an echo message
 *   (another type, or code not 0).
 *
 * @example
 * ```ts
 * import { parseIcmpEcho } from "./icmp.ts";
 * import { Icmpv4Message } from "./icmpv4.ts";
 * const m = Icmpv4Message.view(new Uint8Array([8, 0, 0, 0, 0, 1, 0, 2]))!;
 * if (parseIcmpEcho(m, { request: 8, reply: 0 })?.sequence !== 2) throw new Error("unexpected");
 * if (parseIcmpEcho(m, { request: 128, reply: 129 }) !== null) throw new Error("unexpected");
 * ```
 */
export function parseIcmpEcho(m: IcmpMessage, types: IcmpEchoTypes): IcmpEchoRepr | null {
  const type = m.type;
  if ((type !== types.request && type !== types.reply) || m.code !== 0) return null;
  return {
    reply: type === types.reply,
    identifier: m.identifier,
    sequence: m.sequence,
    payload: m.body,
  };
}

/**
 * Writes an echo request or reply into `buf` with the checksum field zero; the family fills
 * the checksum ({@linkcode storeIcmpChecksum}).
 *
 * @param repr The echo fields.
 * @param types The family's Echo Request and Echo Reply types.
 * @param buf The output buffer; must hold 8 + payload length bytes.
 * @param family "ICMPv4" or "ICMPv6", for the error message.
 * @returns The message: the first 8 + payload length bytes of `buf`.
 * @throws {RangeError} When `buf` is too short.
 *
 * @example
 * ```ts
 * import { emitIcmpEcho } from "./icmp.ts";
 * const m = emitIcmpEcho({ reply: true, identifier: 0x0102, sequence: 3, payload: new Uint8Array([9]) },
 *   { request: 8, reply: 0 }, new Uint8Array(64), "ICMPv4");
 * if (m.join() !== "0,0,0,0,1,2,0,3,9") throw new Error("unexpected");
 * ```
 */
export function emitIcmpEcho(
  repr: IcmpEchoRepr,
  types: IcmpEchoTypes,
  buf: Uint8Array,
  family: string,
): Uint8Array {
  const length = 8 + repr.payload.length;
  if (buf.length < length) {
    throw new RangeError(
      `Cannot emit ${family} echo: needs ${length} bytes, buffer has ${buf.length}`,
    );
  }
  const m = buf.length === length ? buf : buf.subarray(0, length);
  m[0] = repr.reply ? types.reply : types.request;
  m[1] = 0;
  m[2] = 0;
  m[3] = 0;
  m[4] = (repr.identifier >> 8) & 0xff;
  m[5] = repr.identifier & 0xff;
  m[6] = (repr.sequence >> 8) & 0xff;
  m[7] = repr.sequence & 0xff;
  m.set(repr.payload, 8);
  return m;
}

/**
 * Writes an error message that quotes the invoking packet (Destination Unreachable in both
 * families): type, code, a zero checksum, four zero bytes (unused), then as much of `invoking`
 * as fits both in `quoteMax` bytes and in `buf`. The family fills the checksum
 * ({@linkcode storeIcmpChecksum}).
 *
 * @param type The message type.
 * @param code The code.
 * @param invoking The IP packet that caused the error, from its IP header on.
 * @param quoteMax Most bytes of `invoking` to carry: 548 for ICMPv4 (576-byte datagram), 1232
 *   for ICMPv6 (1280-byte packet).
 * @param buf The output buffer, at least 8 bytes.
 * @param family "ICMPv4" or "ICMPv6", for the error message.
 * @returns The message: the first 8 + quoted length bytes of `buf`.
 * @throws {RangeError} When `buf` is shorter than 8 bytes.
 *
 * @example
 * ```ts
 * import { emitIcmpQuoting } from "./icmp.ts";
 * const m = emitIcmpQuoting(3, 3, new Uint8Array(100).fill(7), 60, new Uint8Array(1500), "ICMPv4");
 * if (m.length !== 68 || m[0] !== 3 || m[4] !== 0 || m[67] !== 7) throw new Error("unexpected");
 * ```
 */
export function emitIcmpQuoting(
  type: number,
  code: number,
  invoking: Uint8Array,
  quoteMax: number,
  buf: Uint8Array,
  family: string,
): Uint8Array {
  if (buf.length < 8) throw new RangeError(`Cannot emit ${family} error: buffer shorter than 8`);
  const body = Math.min(invoking.length, quoteMax, buf.length - 8);
  const m = buf.subarray(0, 8 + body);
  m[0] = type;
  m[1] = code;
  m[2] =
    m[3] =
    m[4] =
    m[5] =
    m[6] =
    m[7] =
      0;
  m.set(invoking.subarray(0, body), 8);
  return m;
}

/**
 * Computes the checksum over the whole message, plus `initial`, and stores it in bytes 2-3.
 *
 * @param m The message (at least 4 bytes).
 * @param initial A folded pseudo-header sum: 0 for ICMPv4, the IPv6 pseudo-header for ICMPv6.
 *
 * @example
 * ```ts
 * import { icmpChecksumVerifies, storeIcmpChecksum } from "./icmp.ts";
 * const m = new Uint8Array([8, 0, 0xaa, 0xbb, 0, 1, 0, 2]);
 * storeIcmpChecksum(m, 0);
 * if (!icmpChecksumVerifies(m, 0) || icmpChecksumVerifies(m, 1)) throw new Error("unexpected");
 * ```
 */
export function storeIcmpChecksum(m: Uint8Array, initial: number): void {
  m[2] = 0;
  m[3] = 0;
  const c = checksum(m, initial);
  m[2] = c >> 8;
  m[3] = c & 0xff;
}

/**
 * Whether the checksum over the whole message, plus `initial`, is correct.
 *
 * @param m The message.
 * @param initial A folded pseudo-header sum: 0 for ICMPv4, the IPv6 pseudo-header for ICMPv6.
 * @returns True when it verifies.
 */
export function icmpChecksumVerifies(m: Uint8Array, initial: number): boolean {
  return sum16(m, initial) === 0xffff;
}
