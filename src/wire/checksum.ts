/**
 * The Internet checksum (RFC 1071): ones'-complement sums of 16-bit big-endian words, the
 * TCP/UDP pseudo-header sums for IPv4 and IPv6, and RFC 1624 incremental updates used when a
 * packet's addresses or ports are rewritten in place.
 *
 * Sums returned by {@linkcode sum16} and {@linkcode pseudoHeaderSum} are folded to 16 bits but
 * not complemented, so they can be chained through the `initial` parameter;
 * {@linkcode finish} turns a sum into the value written to a checksum field.
 *
 * @module
 */

/** Folds a non-negative sum of any size (up to 2^53) to 16 bits with end-around carry. */
function _fold(sum: number): number {
  if (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * Ones'-complement sum of `data` read as big-endian 16-bit words (an odd trailing byte is
 * padded with a zero byte), plus `initial`, folded to 16 bits and NOT complemented.
 *
 * @param data The bytes to sum.
 * @param initial A previous folded sum (e.g. a pseudo-header sum) to add. Default 0.
 * @returns The folded sum, 0..0xffff.
 *
 * @example
 * ```ts
 * import { sum16 } from "./checksum.ts";
 * // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
 * const s = sum16(new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]));
 * if (s !== 0xddf2) throw new Error("unexpected sum");
 * ```
 */
export function sum16(data: Uint8Array, initial = 0): number {
  let sum = initial;
  const n = data.length;
  const even = n & ~1;
  let i = 0;
  // Unrolled by 8 bytes; at most 2^16 words are added before the sum could reach 2^32, and
  // doubles hold integers exactly up to 2^53, so folding once at the end is safe.
  const even8 = n & ~7;
  for (; i < even8; i += 8) {
    sum += ((data[i] << 8) | data[i + 1]) + ((data[i + 2] << 8) | data[i + 3]) +
      ((data[i + 4] << 8) | data[i + 5]) + ((data[i + 6] << 8) | data[i + 7]);
  }
  for (; i < even; i += 2) sum += (data[i] << 8) | data[i + 1];
  if (n & 1) sum += data[n - 1] << 8;
  return _fold(sum);
}

/**
 * Folds `sum` to 16 bits and complements it, giving the value to store in a checksum field.
 *
 * @param sum A ones'-complement sum, folded or not.
 * @returns The 16-bit checksum.
 *
 * @example
 * ```ts
 * import { finish } from "./checksum.ts";
 * if (finish(0xddf2) !== 0x220d) throw new Error("unexpected checksum");
 * ```
 */
export function finish(sum: number): number {
  return ~_fold(sum) & 0xffff;
}

/**
 * The Internet checksum of `data`: `finish(sum16(data, initial))`.
 *
 * @param data The bytes to checksum (with the checksum field zeroed, when computing one).
 * @param initial A folded sum to include, e.g. from {@linkcode pseudoHeaderSum}. Default 0.
 * @returns The 16-bit checksum. Over data that already holds a correct checksum it is 0.
 *
 * @example
 * ```ts
 * import { checksum } from "./checksum.ts";
 * const header = new Uint8Array([0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
 * const c = checksum(header);
 * header[10] = c >> 8;
 * header[11] = c & 0xff;
 * if (checksum(header) !== 0) throw new Error("checksum does not verify");
 * ```
 */
export function checksum(data: Uint8Array, initial = 0): number {
  return finish(sum16(data, initial));
}

/**
 * Folded (not complemented) sum of the TCP/UDP/ICMPv6 pseudo-header: the IPv4 one (RFC 9293
 * section 3.1) when `src` has 4 bytes, else the IPv6 one (RFC 8200 section 8.1).
 *
 * @param src Source address, 4 or 16 bytes.
 * @param dst Destination address, same length as `src`.
 * @param protocol Upper-layer protocol number (e.g. 6 for TCP).
 * @param upperLength Length of the upper-layer header plus payload, in bytes.
 * @returns The folded sum, to pass as `initial` to {@linkcode sum16} or {@linkcode checksum}.
 *
 * @example
 * ```ts
 * import { checksum, pseudoHeaderSum } from "./checksum.ts";
 * const src = new Uint8Array([10, 0, 0, 1]);
 * const dst = new Uint8Array([10, 0, 0, 2]);
 * const udp = new Uint8Array([0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
 * const c = checksum(udp, pseudoHeaderSum(src, dst, 17, udp.length));
 * if (c === 0) throw new Error("unexpected");
 * ```
 */
export function pseudoHeaderSum(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  upperLength: number,
): number {
  // Both layouts reduce to: addresses + protocol + length (IPv6 uses a 32-bit length).
  return _fold(
    sum16(src) + sum16(dst) + protocol + (upperLength >>> 16) + (upperLength & 0xffff),
  );
}

/**
 * Incrementally updates a checksum after one 16-bit word of the covered data changed from
 * `oldWord` to `newWord`, using RFC 1624 equation 3: `HC' = ~(~HC + ~m + m')`.
 *
 * @param check The current checksum field value.
 * @param oldWord The old 16-bit word.
 * @param newWord The new 16-bit word.
 * @returns The new checksum field value.
 *
 * @example
 * ```ts
 * import { adjust16 } from "./checksum.ts";
 * // RFC 1624 section 4 example: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives 0x0000.
 * if (adjust16(0xdd2f, 0x5555, 0x3285) !== 0x0000) throw new Error("unexpected");
 * ```
 */
export function adjust16(check: number, oldWord: number, newWord: number): number {
  let sum = (~check & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Incrementally updates a checksum after the bytes `oldBytes` of the covered data, starting at
 * an even offset, were replaced by `newBytes` (RFC 1624 equation 3 word by word). Used for
 * address rewrites. Does not allocate.
 *
 * @param check The current checksum field value.
 * @param oldBytes The old bytes; even length.
 * @param newBytes The new bytes; same length as `oldBytes`.
 * @returns The new checksum field value.
 *
 * @example
 * ```ts
 * import { adjust, checksum } from "./checksum.ts";
 * const header = new Uint8Array([0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
 * const c = checksum(header);
 * const newSrc = new Uint8Array([192, 168, 1, 1]);
 * const updated = adjust(c, header.subarray(12, 16), newSrc);
 * header.set(newSrc, 12);
 * if (updated !== checksum(header)) throw new Error("mismatch");
 * ```
 */
export function adjust(check: number, oldBytes: Uint8Array, newBytes: Uint8Array): number {
  let sum = ~check & 0xffff;
  const n = oldBytes.length & ~1;
  for (let i = 0; i < n; i += 2) {
    sum += (~((oldBytes[i] << 8) | oldBytes[i + 1]) & 0xffff) +
      ((newBytes[i] << 8) | newBytes[i + 1]);
  }
  return ~_fold(sum) & 0xffff;
}
