/**
 * IPv4 (RFC 791): a typed view over a packet's bytes, and a parsed representation with emit.
 *
 * @module
 */

import { checksum } from "./checksum.ts";

export { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from "./protocol.ts";

/**
 * A view over an IPv4 packet. Lengths are checked once by {@linkcode Ipv4Packet.view}; after
 * that no accessor can fail. Getters read the bytes in place; setters write them in place and
 * do not update the header checksum (use {@linkcode Ipv4Packet.fillChecksum} or the incremental
 * helpers in `checksum.ts`).
 *
 * @example
 * ```ts
 * import { Ipv4Packet, emitIpv4, IPPROTO_UDP } from "./ipv4.ts";
 * const buf = new Uint8Array(28);
 * emitIpv4({
 *   src: new Uint8Array([10, 0, 0, 1]),
 *   dst: new Uint8Array([10, 96, 0, 10]),
 *   protocol: IPPROTO_UDP,
 *   ttl: 64,
 *   payloadLength: 8,
 * }, buf);
 * const p = Ipv4Packet.view(buf)!;
 * if (p.totalLength !== 28 || !p.verifyChecksum() || p.dst[1] !== 96) throw new Error("unexpected");
 * ```
 */
export class Ipv4Packet {
  /** The packet: exactly `totalLength` bytes (trailing bytes of the input are excluded). */
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Makes a view over `buf`, or returns null when it is not a well-formed IPv4 packet:
   * shorter than 20 bytes, version not 4, IHL below 5, or total length smaller than the header
   * or larger than `buf`. Never throws.
   *
   * @param buf The packet bytes, possibly followed by padding.
   * @returns The view, covering the first `totalLength` bytes, or null.
   */
  static view(buf: Uint8Array): Ipv4Packet | null {
    if (buf.length < 20) return null;
    const b0 = buf[0];
    if (b0 >> 4 !== 4) return null;
    const headerLength = (b0 & 0x0f) << 2;
    if (headerLength < 20) return null;
    const totalLength = (buf[2] << 8) | buf[3];
    if (totalLength < headerLength || totalLength > buf.length) return null;
    return new Ipv4Packet(totalLength === buf.length ? buf : buf.subarray(0, totalLength));
  }

  /** Header length in bytes (IHL × 4), 20..60. */
  get headerLength(): number {
    return (this.bytes[0] & 0x0f) << 2;
  }

  /** Total Length field: header plus payload, in bytes. */
  get totalLength(): number {
    return this.#view.getUint16(2);
  }

  /** Differentiated Services Code Point (upper 6 bits of the former TOS byte). */
  get dscp(): number {
    return this.bytes[1] >> 2;
  }

  /** Explicit Congestion Notification (lower 2 bits of the former TOS byte). */
  get ecn(): number {
    return this.bytes[1] & 0x03;
  }

  /** Identification field. */
  get identification(): number {
    return this.#view.getUint16(4);
  }

  /** The DF (Don't Fragment) flag. */
  get dontFragment(): boolean {
    return (this.bytes[6] & 0x40) !== 0;
  }

  /** The MF (More Fragments) flag. */
  get moreFragments(): boolean {
    return (this.bytes[6] & 0x20) !== 0;
  }

  /** Fragment offset in bytes (the field value × 8). */
  get fragmentOffset(): number {
    return (this.#view.getUint16(6) & 0x1fff) << 3;
  }

  /** Whether this packet is a fragment (MF set or a non-zero fragment offset). */
  get isFragment(): boolean {
    return (this.#view.getUint16(6) & 0x3fff) !== 0;
  }

  /** Time To Live. */
  get ttl(): number {
    return this.bytes[8];
  }

  /** Sets Time To Live (the checksum is not updated). */
  set ttl(value: number) {
    this.bytes[8] = value;
  }

  /** Protocol field: the upper-layer protocol number (see `protocol.ts`). */
  get protocol(): number {
    return this.bytes[9];
  }

  /** Header Checksum field. */
  get checksum(): number {
    return this.#view.getUint16(10);
  }

  /** Sets the Header Checksum field. */
  set checksum(value: number) {
    this.#view.setUint16(10, value);
  }

  /** Source address: a live 4-byte subarray of {@linkcode Ipv4Packet.bytes} (allocates one). */
  get src(): Uint8Array {
    return this.bytes.subarray(12, 16);
  }

  /** Destination address: a live 4-byte subarray of {@linkcode Ipv4Packet.bytes}. */
  get dst(): Uint8Array {
    return this.bytes.subarray(16, 20);
  }

  /** Options bytes between the fixed header and the payload (a subarray, often empty). */
  get options(): Uint8Array {
    return this.bytes.subarray(20, this.headerLength);
  }

  /** The payload: a subarray from `headerLength` to `totalLength`. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength);
  }

  /**
   * Whether the header checksum is correct.
   *
   * @returns True when the header sums to 0xffff.
   */
  verifyChecksum(): boolean {
    return checksum(this.bytes.subarray(0, this.headerLength)) === 0;
  }

  /** Computes the header checksum and stores it in the packet. */
  fillChecksum(): void {
    const v = this.#view;
    v.setUint16(10, 0);
    v.setUint16(10, checksum(this.bytes.subarray(0, this.headerLength)));
  }
}

/** The parsed fields of an IPv4 header that kconnect reads and writes. */
export interface Ipv4Repr {
  /** Source address, 4 bytes. */
  src: Uint8Array;
  /** Destination address, 4 bytes. */
  dst: Uint8Array;
  /** Upper-layer protocol number. */
  protocol: number;
  /** Time To Live. */
  ttl: number;
  /** Payload length in bytes (total length minus header length). */
  payloadLength: number;
  /** Identification field. Default 0 when emitting. */
  identification?: number;
  /** The DF flag. Default true when emitting. */
  dontFragment?: boolean;
}

/**
 * Parses the header of a packet into an {@linkcode Ipv4Repr}. Addresses are copied.
 *
 * @param p A view from {@linkcode Ipv4Packet.view}.
 * @returns The parsed header.
 *
 * @example
 * ```ts
 * import { Ipv4Packet, parseIpv4 } from "./ipv4.ts";
 * const p = Ipv4Packet.view(new Uint8Array([
 *   0x45, 0, 0, 20, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
 * ]))!;
 * if (parseIpv4(p).payloadLength !== 0) throw new Error("unexpected");
 * ```
 */
export function parseIpv4(p: Ipv4Packet): Ipv4Repr {
  return {
    src: p.src.slice(),
    dst: p.dst.slice(),
    protocol: p.protocol,
    ttl: p.ttl,
    payloadLength: p.totalLength - p.headerLength,
    identification: p.identification,
    dontFragment: p.dontFragment,
  };
}

/**
 * Writes a 20-byte IPv4 header (no options, DSCP/ECN 0, not a fragment) with its checksum into
 * `buf[0..20]`. The payload, `repr.payloadLength` bytes, is the caller's to write at `buf[20]`.
 *
 * @param repr The header fields.
 * @param buf The output buffer, at least 20 bytes.
 * @returns The header length, 20.
 * @throws {RangeError} When `buf` is shorter than 20 bytes.
 *
 * @example
 * ```ts
 * import { emitIpv4, IPPROTO_TCP } from "./ipv4.ts";
 * const buf = new Uint8Array(20);
 * const n = emitIpv4({
 *   src: new Uint8Array([10, 0, 0, 1]),
 *   dst: new Uint8Array([10, 0, 0, 2]),
 *   protocol: IPPROTO_TCP,
 *   ttl: 64,
 *   payloadLength: 0,
 * }, buf);
 * if (n !== 20) throw new Error("unexpected");
 * ```
 */
export function emitIpv4(repr: Ipv4Repr, buf: Uint8Array): number {
  if (buf.length < 20) throw new RangeError("Cannot emit IPv4 header: buffer shorter than 20");
  const totalLength = 20 + repr.payloadLength;
  const id = repr.identification ?? 0;
  buf[0] = 0x45;
  buf[1] = 0;
  buf[2] = totalLength >> 8;
  buf[3] = totalLength & 0xff;
  buf[4] = (id >> 8) & 0xff;
  buf[5] = id & 0xff;
  buf[6] = (repr.dontFragment ?? true) ? 0x40 : 0;
  buf[7] = 0;
  buf[8] = repr.ttl;
  buf[9] = repr.protocol;
  buf[10] = 0;
  buf[11] = 0;
  buf.set(repr.src, 12);
  buf.set(repr.dst, 16);
  const c = checksum(buf.subarray(0, 20));
  buf[10] = c >> 8;
  buf[11] = c & 0xff;
  return 20;
}
