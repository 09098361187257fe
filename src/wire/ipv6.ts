/**
 * IPv6 (RFC 8200): a typed view over a packet's bytes, extension-header walking, and a parsed
 * representation with emit.
 *
 * @module
 */

import { IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_HOPOPTS, IPPROTO_ROUTING } from "./protocol.ts";

/**
 * A view over an IPv6 packet. Lengths are checked once by {@linkcode Ipv6Packet.view}; after
 * that no accessor can fail. Setters write in place.
 *
 * @example
 * ```ts
 * import { emitIpv6, Ipv6Packet } from "./ipv6.ts";
 * import { parseAddress } from "./address.ts";
 * const buf = new Uint8Array(48);
 * emitIpv6({
 *   src: parseAddress("fd00::1")!,
 *   dst: parseAddress("fd00::2")!,
 *   nextHeader: 17,
 *   hopLimit: 64,
 *   payloadLength: 8,
 * }, buf);
 * const p = Ipv6Packet.view(buf)!;
 * if (p.upperLayer()?.protocol !== 17 || p.upperLayer()?.offset !== 40) throw new Error("unexpected");
 * ```
 */
export class Ipv6Packet {
  /** The packet: exactly 40 + `payloadLength` bytes (trailing bytes of the input excluded). */
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Makes a view over `buf`, or returns null when it is not a well-formed IPv6 packet: shorter
   * than 40 bytes, version not 6, or 40 + payload length larger than `buf`. Jumbograms (payload
   * length 0 with a Hop-by-Hop header) are not supported and give null. Never throws.
   *
   * @param buf The packet bytes, possibly followed by padding.
   * @returns The view, or null.
   */
  static view(buf: Uint8Array): Ipv6Packet | null {
    if (buf.length < 40) return null;
    if (buf[0] >> 4 !== 6) return null;
    const payloadLength = (buf[4] << 8) | buf[5];
    if (payloadLength === 0 && buf[6] === IPPROTO_HOPOPTS) return null;
    const total = 40 + payloadLength;
    if (total > buf.length) return null;
    return new Ipv6Packet(total === buf.length ? buf : buf.subarray(0, total));
  }

  /** Traffic Class (DSCP and ECN), 8 bits. */
  get trafficClass(): number {
    const b = this.bytes;
    return ((b[0] & 0x0f) << 4) | (b[1] >> 4);
  }

  /** Flow Label, 20 bits. */
  get flowLabel(): number {
    return ((this.bytes[1] & 0x0f) << 16) | this.#view.getUint16(2);
  }

  /** Payload Length field: bytes after the 40-byte fixed header, extension headers included. */
  get payloadLength(): number {
    return this.#view.getUint16(4);
  }

  /** Next Header field of the fixed header. */
  get nextHeader(): number {
    return this.bytes[6];
  }

  /** Hop Limit. */
  get hopLimit(): number {
    return this.bytes[7];
  }

  /** Sets the Hop Limit. */
  set hopLimit(value: number) {
    this.bytes[7] = value;
  }

  /** Source address: a live 16-byte subarray of {@linkcode Ipv6Packet.bytes} (allocates one). */
  get src(): Uint8Array {
    return this.bytes.subarray(8, 24);
  }

  /** Destination address: a live 16-byte subarray of {@linkcode Ipv6Packet.bytes}. */
  get dst(): Uint8Array {
    return this.bytes.subarray(24, 40);
  }

  /** Everything after the fixed header, extension headers included (a subarray). */
  get payload(): Uint8Array {
    return this.bytes.subarray(40);
  }

  /**
   * Walks the Hop-by-Hop (0, first only), Routing (43) and Destination Options (60) extension
   * headers to the upper-layer header. A Fragment header (44) stops the walk and is returned as
   * `{ protocol: 44, offset }`; so is any other protocol number, e.g. 59 (No Next Header).
   * Allocates only the result object.
   *
   * @returns The upper-layer protocol and its offset within {@linkcode Ipv6Packet.bytes}, or
   *   null when the header chain is malformed (runs past the end, or a misplaced Hop-by-Hop).
   */
  upperLayer(): { protocol: number; offset: number } | null {
    const b = this.bytes;
    const n = b.length;
    let protocol = b[6];
    let offset = 40;
    let first = true;
    while (
      protocol === IPPROTO_ROUTING || protocol === IPPROTO_DSTOPTS ||
      protocol === IPPROTO_HOPOPTS
    ) {
      if (protocol === IPPROTO_HOPOPTS && !first) return null;
      first = false;
      if (offset + 8 > n) return null;
      protocol = b[offset];
      offset += (b[offset + 1] + 1) << 3;
    }
    if (offset > n) return null;
    if (protocol === IPPROTO_FRAGMENT && offset + 8 > n) return null;
    return { protocol, offset };
  }
}

/** The parsed fields of an IPv6 fixed header. */
export interface Ipv6Repr {
  /** Source address, 16 bytes. */
  src: Uint8Array;
  /** Destination address, 16 bytes. */
  dst: Uint8Array;
  /** Next Header of the fixed header. */
  nextHeader: number;
  /** Hop Limit. */
  hopLimit: number;
  /** Payload Length: bytes after the fixed header. */
  payloadLength: number;
  /** Traffic Class. Default 0 when emitting. */
  trafficClass?: number;
  /** Flow Label. Default 0 when emitting. */
  flowLabel?: number;
}

/**
 * Parses the fixed header of a packet into an {@linkcode Ipv6Repr}. Addresses are copied.
 *
 * @param p A view from {@linkcode Ipv6Packet.view}.
 * @returns The parsed header.
 *
 * @example
 * ```ts
 * import { Ipv6Packet, parseIpv6 } from "./ipv6.ts";
 * const buf = new Uint8Array(40);
 * buf[0] = 0x60;
 * buf[6] = 59;
 * if (parseIpv6(Ipv6Packet.view(buf)!).nextHeader !== 59) throw new Error("unexpected");
 * ```
 */
export function parseIpv6(p: Ipv6Packet): Ipv6Repr {
  return {
    src: p.src.slice(),
    dst: p.dst.slice(),
    nextHeader: p.nextHeader,
    hopLimit: p.hopLimit,
    payloadLength: p.payloadLength,
    trafficClass: p.trafficClass,
    flowLabel: p.flowLabel,
  };
}

/**
 * Writes a 40-byte IPv6 fixed header into `buf[0..40]`. The payload is the caller's to write
 * at `buf[40]`.
 *
 * @param repr The header fields.
 * @param buf The output buffer, at least 40 bytes.
 * @returns The header length, 40.
 * @throws {RangeError} When `buf` is shorter than 40 bytes.
 *
 * @example
 * ```ts
 * import { emitIpv6 } from "./ipv6.ts";
 * const buf = new Uint8Array(40);
 * const n = emitIpv6({
 *   src: new Uint8Array(16),
 *   dst: new Uint8Array(16),
 *   nextHeader: 59,
 *   hopLimit: 64,
 *   payloadLength: 0,
 * }, buf);
 * if (n !== 40 || buf[0] !== 0x60) throw new Error("unexpected");
 * ```
 */
export function emitIpv6(repr: Ipv6Repr, buf: Uint8Array): number {
  if (buf.length < 40) throw new RangeError("Cannot emit IPv6 header: buffer shorter than 40");
  const tc = repr.trafficClass ?? 0;
  const fl = repr.flowLabel ?? 0;
  buf[0] = 0x60 | ((tc >> 4) & 0x0f);
  buf[1] = ((tc & 0x0f) << 4) | ((fl >> 16) & 0x0f);
  buf[2] = (fl >> 8) & 0xff;
  buf[3] = fl & 0xff;
  buf[4] = (repr.payloadLength >> 8) & 0xff;
  buf[5] = repr.payloadLength & 0xff;
  buf[6] = repr.nextHeader;
  buf[7] = repr.hopLimit;
  buf.set(repr.src, 8);
  buf.set(repr.dst, 24);
  return 40;
}
