/**
 * The TUN's own small prefixes: the device's address and the fake peer that the kernel-side
 * TCP connections come from (design brief, decision 2). 198.18.0.0/15 is reserved for
 * benchmarking (RFC 2544) and is not routed on the Internet; the IPv6 prefix is a ULA.
 *
 * @module
 */
import { Cidr, formatAddress } from "../wire/address.ts";

/** The addresses of one family on the TUN. */
export interface TunFamilyAddresses {
  /** The device's own address. */
  tun: string;
  /** The fake peer. */
  peer: string;
  /** Prefix length assigned with `tun`. */
  prefixLength: number;
}

/** Default IPv4 prefix of the TUN. */
export const DEFAULT_TUN_NET4 = "198.18.0.0/30";
/** Default IPv6 prefix of the TUN. */
export const DEFAULT_TUN_NET6 = "fd00:6b63::/126";

/**
 * Derives the TUN address (first host) and the peer (second host) from a prefix of at most
 * /30 (IPv4) or /126 (IPv6). Throws a TypeError naming the prefix when it does not fit.
 */
export function tunAddresses(prefix: string): TunFamilyAddresses {
  const cidr = Cidr.parse(prefix);
  if (cidr === null) throw new TypeError(`Invalid TUN prefix "${prefix}"`);
  const max = cidr.address.length * 8 - 2;
  if (cidr.prefixLength > max) {
    throw new TypeError(`TUN prefix ${prefix} is too small: it needs at least /${max}`);
  }
  const host = (n: number) => {
    const a = cidr.address.slice();
    a[a.length - 1] += n;
    return formatAddress(a);
  };
  return { tun: host(1), peer: host(2), prefixLength: cidr.prefixLength };
}
