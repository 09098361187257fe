/**
 * UDP (RFC 768, RFC 8200 section 8.1): a typed view over a datagram's bytes, and emit.
 *
 * The checksum has two special cases handled here: a computed checksum of 0 is sent as 0xffff,
 * and a checksum field of 0 in IPv4 means "no checksum" (it is invalid over IPv6).
 *
 * @module
 */

import { adjust, checksum, pseudoHeaderSum, sum16 } from "./checksum.ts";
import { IPPROTO_UDP } from "./protocol.ts";

/**
 * A view over a UDP datagram. {@linkcode UdpDatagram.view} checks lengths once; after that no
 * accessor can fail. Setters write in place and do not update the checksum.
 *
 * @example
 * ```ts
 * import { emitUdp, UdpDatagram } from "./udp.ts";
 * const src = new Uint8Array([10, 0, 0, 1]);
 * const dst = new Uint8Array([10, 96, 0, 10]);
 * const buf = new Uint8Array(64);
 * const n = emitUdp({ srcPort: 5353, dstPort: 53, payload: new Uint8Array([1, 2, 3]) }, buf, src, dst);
 * const d = UdpDatagram.view(buf.subarray(0, n))!;
 * if (d.length !== 11 || !d.verifyChecksum(src, dst)) throw new Error("unexpected");
 * ```
 */
export class UdpDatagram {
  /** The datagram: exactly `length` bytes (trailing bytes of the input excluded). */
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Makes a view over `buf`, or returns null when it is shorter than 8 bytes or its Length
   * field is below 8 or larger than `buf`. Never throws.
   *
   * @param buf The datagram: the IP payload.
   * @returns The view, covering the first `length` bytes, or null.
   */
  static view(buf: Uint8Array): UdpDatagram | null {
    if (buf.length < 8) return null;
    const length = (buf[4] << 8) | buf[5];
    if (length < 8 || length > buf.length) return null;
    return new UdpDatagram(length === buf.length ? buf : buf.subarray(0, length));
  }

  /** Source port. */
  get srcPort(): number {
    return this.#view.getUint16(0);
  }

  /** Sets the source port (the checksum is not updated). */
  set srcPort(value: number) {
    this.#view.setUint16(0, value);
  }

  /** Destination port. */
  get dstPort(): number {
    return this.#view.getUint16(2);
  }

  /** Sets the destination port (the checksum is not updated). */
  set dstPort(value: number) {
    this.#view.setUint16(2, value);
  }

  /** Length field: header plus payload, in bytes. */
  get length(): number {
    return this.#view.getUint16(4);
  }

  /** Checksum field (0 = none, IPv4 only). */
  get checksum(): number {
    return this.#view.getUint16(6);
  }

  /** Sets the checksum field. */
  set checksum(value: number) {
    this.#view.setUint16(6, value);
  }

  /** The payload after the 8-byte header (a subarray). */
  get payload(): Uint8Array {
    return this.bytes.subarray(8);
  }

  /**
   * Whether the checksum is correct for the given IP addresses. A zero checksum field is
   * accepted over IPv4 ("no checksum") and rejected over IPv6.
   *
   * @param src IP source address, 4 or 16 bytes.
   * @param dst IP destination address, same length.
   * @returns True when the checksum verifies (or is absent over IPv4).
   */
  verifyChecksum(src: Uint8Array, dst: Uint8Array): boolean {
    if (this.#view.getUint16(6) === 0) return src.length === 4;
    const b = this.bytes;
    return sum16(b, pseudoHeaderSum(src, dst, IPPROTO_UDP, b.length)) === 0xffff;
  }

  /**
   * Computes the checksum for the given IP addresses and stores it; a computed 0 is stored as
   * 0xffff.
   *
   * @param src IP source address, 4 or 16 bytes.
   * @param dst IP destination address, same length.
   */
  fillChecksum(src: Uint8Array, dst: Uint8Array): void {
    const b = this.bytes;
    this.#view.setUint16(6, 0);
    this.#view.setUint16(6, _udpChecksum(b, src, dst));
  }
}

/** The UDP checksum of `b` (checksum field zeroed), with 0 mapped to 0xffff. */
function _udpChecksum(b: Uint8Array, src: Uint8Array, dst: Uint8Array): number {
  return checksum(b, pseudoHeaderSum(src, dst, IPPROTO_UDP, b.length)) || 0xffff;
}

/**
 * Incrementally updates a UDP checksum field after covered bytes (an address in the
 * pseudo-header, or a port) changed from `oldBytes` to `newBytes`, keeping UDP's special
 * cases: a field of 0 ("no checksum", IPv4) stays 0, and a result of 0 is stored as 0xffff.
 *
 * @param check The current checksum field.
 * @param oldBytes The old bytes; even length.
 * @param newBytes The new bytes; same length.
 * @returns The new checksum field.
 *
 * @example
 * ```ts
 * import { adjustUdpChecksum } from "./udp.ts";
 * const same = new Uint8Array([10, 0, 0, 1]);
 * if (adjustUdpChecksum(0, same, new Uint8Array([10, 0, 0, 2])) !== 0) throw new Error("unexpected");
 * ```
 */
export function adjustUdpChecksum(
  check: number,
  oldBytes: Uint8Array,
  newBytes: Uint8Array,
): number {
  if (check === 0) return 0;
  return adjust(check, oldBytes, newBytes) || 0xffff;
}

/** The fields of a UDP datagram to emit. */
export interface UdpRepr {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Payload. */
  payload: Uint8Array;
}

/**
 * Writes a UDP datagram (header, payload, checksum for the given IP addresses) into `buf`.
 *
 * @param repr The datagram.
 * @param buf The output buffer; must hold 8 + payload length bytes.
 * @param src IP source address, 4 or 16 bytes (for the pseudo-header).
 * @param dst IP destination address, same length.
 * @returns The datagram length, 8 + payload length.
 * @throws {RangeError} When `buf` is too short.
 *
 * @example
 * ```ts
 * import { emitUdp } from "./udp.ts";
 * const buf = new Uint8Array(8);
 * const n = emitUdp({ srcPort: 53, dstPort: 5353, payload: new Uint8Array() }, buf,
 *   new Uint8Array([10, 96, 0, 10]), new Uint8Array([10, 0, 0, 1]));
 * if (n !== 8) throw new Error("unexpected");
 * ```
 */
export function emitUdp(
  repr: UdpRepr,
  buf: Uint8Array,
  src: Uint8Array,
  dst: Uint8Array,
): number {
  const length = 8 + repr.payload.length;
  if (buf.length < length) {
    throw new RangeError(
      `Cannot emit UDP datagram: needs ${length} bytes, buffer has ${buf.length}`,
    );
  }
  const d = buf.length === length ? buf : buf.subarray(0, length);
  d[0] = repr.srcPort >> 8;
  d[1] = repr.srcPort & 0xff;
  d[2] = repr.dstPort >> 8;
  d[3] = repr.dstPort & 0xff;
  d[4] = length >> 8;
  d[5] = length & 0xff;
  d[6] = 0;
  d[7] = 0;
  d.set(repr.payload, 8);
  const c = _udpChecksum(d, src, dst);
  d[6] = c >> 8;
  d[7] = c & 0xff;
  return length;
}
