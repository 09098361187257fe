/**
 * IPv4 and IPv6 addresses as bytes (4 or 16, network order): strict text parsing, RFC 5952
 * formatting, and CIDR prefixes.
 *
 * @module
 */

/** Parses a strict dotted quad into `out` at `offset`; returns false when not valid. */
function _parseIpv4Into(text: string, out: Uint8Array, offset: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e; // treat end as a final "."
    if (c === 0x2e) {
      if (digits === 0 || part > 3) return false;
      out[offset + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits === 1 && value === 0) return false; // leading zero: "01" is ambiguous (octal)
      value = value * 10 + (c - 0x30);
      digits++;
      if (value > 255) return false;
    } else {
      return false;
    }
  }
  return part === 4;
}

/** Value of one hex digit character code, or -1. */
function _hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Parses IPv6 text (RFC 4291 section 2.2, no zone id) into 16 bytes, or null. */
function _parseIpv6(text: string): Uint8Array | null {
  const out = new Uint8Array(16);
  const n = text.length;
  if (n < 2) return null;
  let word = 0; // number of 16-bit groups written
  let gap = -1; // group index where "::" was found
  let i = 0;
  if (text.charCodeAt(0) === 0x3a) {
    if (text.charCodeAt(1) !== 0x3a) return null; // a lone leading ":"
    gap = 0;
    i = 2;
    if (i === n) return out; // "::"
  }
  for (;;) {
    // Parse one group starting at i: hex digits, or a trailing dotted quad.
    let value = 0;
    let digits = 0;
    const start = i;
    while (i < n && digits <= 4) {
      const h = _hexValue(text.charCodeAt(i));
      if (h < 0) break;
      value = (value << 4) | h;
      digits++;
      i++;
    }
    if (i < n && text.charCodeAt(i) === 0x2e) {
      // Embedded IPv4 must be the last 32 bits.
      if (word > 6) return null;
      if (!_parseIpv4Into(text.slice(start), out, word * 2)) return null;
      word += 2;
      break;
    }
    if (digits === 0 || digits > 4) return null;
    if (word >= 8) return null;
    out[word * 2] = value >> 8;
    out[word * 2 + 1] = value & 0xff;
    word++;
    if (i === n) break;
    if (text.charCodeAt(i) !== 0x3a) return null;
    i++;
    if (i < n && text.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return null; // a second "::"
      gap = word;
      i++;
      if (i === n) break;
    } else if (i === n) {
      return null; // trailing single ":"
    }
  }
  if (gap < 0) return word === 8 ? out : null;
  if (word > 7) return null; // "::" must stand for at least one group
  // Move the groups after the gap to the end.
  const tail = (word - gap) * 2;
  out.copyWithin(16 - tail, gap * 2, word * 2);
  out.fill(0, gap * 2, 16 - tail);
  return out;
}

/**
 * Parses an IP address. IPv4 must be a strict dotted quad (four decimal parts 0-255, no
 * leading zeros); IPv6 accepts every RFC 4291 text form (`::` compression, embedded IPv4 such
 * as `::ffff:1.2.3.4`, either case) but no zone id.
 *
 * @param text The address text.
 * @returns 4 bytes for IPv4, 16 bytes for IPv6, or null when `text` is neither.
 *
 * @example
 * ```ts
 * import { parseAddress } from "./address.ts";
 * const a = parseAddress("10.96.0.10"); // Uint8Array [10, 96, 0, 10]
 * const b = parseAddress("fd00::1"); // 16 bytes
 * if (a?.length !== 4 || b?.length !== 16 || parseAddress("010.0.0.1") !== null) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function parseAddress(text: string): Uint8Array | null {
  if (text.indexOf(":") >= 0) return _parseIpv6(text);
  const out = new Uint8Array(4);
  return _parseIpv4Into(text, out, 0) ? out : null;
}

/**
 * Formats an address: 4 bytes as a dotted quad, 16 bytes in RFC 5952 canonical form (lowercase
 * hex without leading zeros, the longest run of two or more zero groups written as `::`, the
 * first such run on a tie). IPv4-mapped addresses (`::ffff:0:0/96`) use the mixed notation
 * recommended by RFC 5952 section 5, e.g. `::ffff:192.0.2.1`.
 *
 * @param bytes A 4- or 16-byte address.
 * @returns The text form.
 * @throws {RangeError} When `bytes` is neither 4 nor 16 bytes long.
 *
 * @example
 * ```ts
 * import { formatAddress, parseAddress } from "./address.ts";
 * if (formatAddress(parseAddress("2001:DB8:0:0:1:0:0:1")!) !== "2001:db8::1:0:0:1") {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) {
    throw new RangeError(`Cannot format address: expected 4 or 16 bytes, got ${bytes.length}`);
  }
  let mapped = bytes[10] === 0xff && bytes[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) mapped = bytes[i] === 0;
  if (mapped) return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  // Find the longest run of zero groups (first on a tie).
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let g = 0; g <= 8; g++) {
    const zero = g < 8 && bytes[g * 2] === 0 && bytes[g * 2 + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = g;
    } else if (runStart >= 0) {
      if (g - runStart > bestLen) {
        bestStart = runStart;
        bestLen = g - runStart;
      }
      runStart = -1;
    }
  }
  if (bestLen < 2) bestStart = -1;
  let text = "";
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      text += "::";
      g += bestLen - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(":")) text += ":";
    text += ((bytes[g * 2] << 8) | bytes[g * 2 + 1]).toString(16);
  }
  return text;
}

/**
 * Whether two addresses are equal (same length, same bytes).
 *
 * @param a An address.
 * @param b Another address.
 * @returns True when equal.
 *
 * @example
 * ```ts
 * import { parseAddress, sameAddress } from "./address.ts";
 * if (!sameAddress(parseAddress("::1")!, parseAddress("0:0::0:1")!)) throw new Error("unexpected");
 * ```
 */
export function sameAddress(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether the first `bits` bits of `a` and `b` are equal. Lengths must be ≥ bits/8. */
function _prefixEqual(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const whole = bits >>> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return ((a[whole] ^ b[whole]) & mask) === 0;
}

/**
 * An IP prefix such as `10.96.0.0/12` or `fd00::/8`.
 *
 * @example
 * ```ts
 * import { Cidr, parseAddress } from "./address.ts";
 * const services = Cidr.parse("10.96.0.0/12")!;
 * if (!services.contains(parseAddress("10.96.0.10")!)) throw new Error("unexpected");
 * if (services.toString() !== "10.96.0.0/12") throw new Error("unexpected");
 * ```
 */
export class Cidr {
  /** The network address, host bits zeroed; 4 or 16 bytes. */
  readonly address: Uint8Array;
  /** The prefix length in bits, 0..32 or 0..128. */
  readonly prefixLength: number;

  private constructor(address: Uint8Array, prefixLength: number) {
    this.address = address;
    this.prefixLength = prefixLength;
  }

  /**
   * Parses `address/prefix`. A bare address is a /32 or /128; host bits set below the prefix
   * are accepted and zeroed (`10.96.1.2/12` becomes `10.96.0.0/12`).
   *
   * @param text The prefix text.
   * @returns The prefix, or null when `text` is not a valid one.
   */
  static parse(text: string): Cidr | null {
    const slash = text.indexOf("/");
    const address = parseAddress(slash < 0 ? text : text.slice(0, slash));
    if (address === null) return null;
    const max = address.length * 8;
    let prefixLength = max;
    if (slash >= 0) {
      const digits = text.slice(slash + 1);
      if (!/^(0|[1-9][0-9]{0,2})$/.test(digits)) return null;
      prefixLength = Number(digits);
      if (prefixLength > max) return null;
    }
    return Cidr.from(address, prefixLength);
  }

  /**
   * Makes a prefix from an address and a prefix length, zeroing host bits (copies `address`).
   *
   * @param address A 4- or 16-byte address.
   * @param prefixLength The prefix length in bits.
   * @returns The prefix, or null when the address length or prefix length is invalid.
   */
  static from(address: Uint8Array, prefixLength: number): Cidr | null {
    if (address.length !== 4 && address.length !== 16) return null;
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > address.length * 8) {
      return null;
    }
    const network = address.slice();
    const whole = prefixLength >>> 3;
    const rest = prefixLength & 7;
    if (rest !== 0) network[whole] &= (0xff00 >> rest) & 0xff;
    network.fill(0, rest !== 0 ? whole + 1 : whole);
    return new Cidr(network, prefixLength);
  }

  /** The address family: 4 or 6. */
  get family(): 4 | 6 {
    return this.address.length === 4 ? 4 : 6;
  }

  /**
   * Whether `addr` lies in this prefix. False when the families differ. Does not allocate.
   *
   * @param addr A 4- or 16-byte address.
   * @returns True when the address is inside the prefix.
   */
  contains(addr: Uint8Array): boolean {
    if (addr.length !== this.address.length) return false;
    return _prefixEqual(this.address, addr, this.prefixLength);
  }

  /**
   * Whether this prefix and `other` share any address (one contains the other).
   *
   * @param other Another prefix.
   * @returns True when they overlap; false when the families differ.
   */
  overlaps(other: Cidr): boolean {
    if (other.address.length !== this.address.length) return false;
    return _prefixEqual(
      this.address,
      other.address,
      Math.min(this.prefixLength, other.prefixLength),
    );
  }

  /**
   * The canonical text form, e.g. `10.96.0.0/12` or `fd00::/8`.
   *
   * @returns The prefix text.
   */
  toString(): string {
    return `${formatAddress(this.address)}/${this.prefixLength}`;
  }
}
