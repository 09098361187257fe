/**
 * The TUN's own small prefixes: the device's address, the fake peer that the kernel-side
 * TCP connections come from (README, "How the data path works"), and the address of kconnect's DNS
 * server, which lives inside the TUN (packets to it are answered by the engine itself). 198.18.0.0/15 is reserved for
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
  /** kconnect's DNS server. */
  dns: string;
  /** Prefix length assigned with `tun`. */
  prefixLength: number;
}

/** Default IPv4 prefix of the TUN. */
export const DEFAULT_TUN_NET4 = "198.18.0.0/29";
/** Default IPv6 prefix of the TUN. */
export const DEFAULT_TUN_NET6 = "fd00:6b63::/125";

/**
 * Derives the TUN address (first host), the peer (second host) and the DNS server (third host)
 * from a prefix of at most /29 (IPv4) or /125 (IPv6). Throws a TypeError naming the prefix when
 * it does not fit.
 */
export function tunAddresses(prefix: string): TunFamilyAddresses {
  const cidr = Cidr.parse(prefix);
  if (cidr === null) throw new TypeError(`Invalid TUN prefix "${prefix}"`);
  const max = cidr.address.length * 8 - 3;
  if (cidr.prefixLength > max) {
    throw new TypeError(`TUN prefix ${prefix} is too small: it needs at least /${max}`);
  }
  const host = (n: number) => {
    const a = cidr.address.slice();
    a[a.length - 1] += n;
    return formatAddress(a);
  };
  return { tun: host(1), peer: host(2), dns: host(3), prefixLength: cidr.prefixLength };
}
