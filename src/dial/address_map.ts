/**
 * Destination rewriting for the direct dialer: `10.96.0.0/12=127.0.0.0/8` maps each address
 * in the first prefix to the same offset in the second (10.96.0.5 → 127.0.0.5); `fd00::/64=::1` maps a whole prefix
 * to one address.
 *
 * @module
 */
import { Cidr, formatAddress, parseAddress } from "../wire/address.ts";

/** One rule: addresses in `from` go to `to` (host bits kept when `to` is a prefix). */
export interface AddressMapRule {
  from: Cidr;
  to: Cidr;
}

/** Parses `FROM=TO`; throws a TypeError naming the rule when it is not valid. */
export function parseMapRule(text: string): AddressMapRule {
  const [left, right, ...rest] = text.split("=");
  const from = left === undefined ? null : Cidr.parse(left.trim());
  const to = right === undefined ? null : Cidr.parse(right.trim());
  if (rest.length > 0 || from === null || to === null) {
    throw new TypeError(
      `Invalid map rule "${text}": expected FROM=TO with a CIDR and a CIDR or address, e.g. 10.96.0.0/12=127.0.0.0/8`,
    );
  }
  if (from.family !== to.family) {
    throw new TypeError(`Invalid map rule "${text}": both sides must be IPv4 or both IPv6`);
  }
  if (to.prefixLength !== to.address.length * 8 && to.prefixLength > from.prefixLength) {
    throw new TypeError(
      `Invalid map rule "${text}": the target prefix /${to.prefixLength} is longer than /${from.prefixLength}, so host bits would be lost (map to a single address instead)`,
    );
  }
  return { from, to };
}

/** Applies the first matching rule to a textual address; returns it unchanged when none match. */
export function mapAddress(rules: readonly AddressMapRule[], address: string): string {
  const bytes = parseAddress(address);
  if (bytes === null) return address;
  for (const { from, to } of rules) {
    if (!from.contains(bytes)) continue;
    const out = to.address.slice();
    if (to.prefixLength === out.length * 8) return formatAddress(out); // one target address
    // The offset inside `from` is kept: 10.96.0.5 in 10.96.0.0/12 → 127.0.0.5 in 127.0.0.0/8.
    for (let bit = from.prefixLength; bit < out.length * 8; bit++) {
      const byte = bit >> 3, mask = 0x80 >> (bit & 7);
      out[byte] = (out[byte] & ~mask) | (bytes[byte] & mask);
    }
    return formatAddress(out);
  }
  return address;
}
