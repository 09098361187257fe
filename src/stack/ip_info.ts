/**
 * The facts about an IP packet the flow engine needs, taken once from the wire views.
 *
 * @module
 */
import { Ipv4Packet } from "../wire/ipv4.ts";
import { Ipv6Packet } from "../wire/ipv6.ts";
import { adjust } from "../wire/checksum.ts";

/** One packet from the TUN, viewed at the IP layer. Addresses are live views into the packet. */
export interface IpInfo {
  family: 4 | 6;
  /** The whole IP packet (trailing bytes after the IP length excluded). */
  bytes: Uint8Array;
  src: Uint8Array;
  dst: Uint8Array;
  /** Upper-layer protocol number. */
  protocol: number;
  /** Offset of the upper-layer header in `bytes`. */
  l4: number;
  /** The IPv4 view, for header checksum updates; null for IPv6. */
  v4: Ipv4Packet | null;
  /** True for a fragment (IPv4 MF/offset, IPv6 Fragment header): not handled by the engine. */
  fragment: boolean;
}

/** Views `buf` as an IPv4 or IPv6 packet; null when it is neither or malformed. */
export function viewIp(buf: Uint8Array): IpInfo | null {
  if (buf.length === 0) return null;
  const version = buf[0] >> 4;
  if (version === 4) {
    const p = Ipv4Packet.view(buf);
    if (p === null) return null;
    return {
      family: 4,
      bytes: p.bytes,
      src: p.src,
      dst: p.dst,
      protocol: p.protocol,
      l4: p.headerLength,
      v4: p,
      fragment: p.isFragment,
    };
  }
  if (version === 6) {
    const p = Ipv6Packet.view(buf);
    if (p === null) return null;
    const ul = p.upperLayer();
    if (ul === null) return null;
    return {
      family: 6,
      bytes: p.bytes,
      src: p.src,
      dst: p.dst,
      protocol: ul.protocol,
      l4: ul.offset,
      v4: null,
      fragment: ul.protocol === 44,
    };
  }
  return null;
}

/**
 * Replaces the packet's addresses, fixing the IPv4 header checksum incrementally. Returns the
 * adjusted value of `l4Checksum` (the transport checksum covers the addresses through its
 * pseudo-header); the caller stores it.
 */
export function rewriteAddresses(
  ip: IpInfo,
  newSrc: Uint8Array,
  newDst: Uint8Array,
  l4Checksum: number,
): number {
  let c = adjust(l4Checksum, ip.src, newSrc);
  c = adjust(c, ip.dst, newDst);
  if (ip.v4 !== null) {
    let h = adjust(ip.v4.checksum, ip.src, newSrc);
    h = adjust(h, ip.dst, newDst);
    ip.v4.checksum = h;
  }
  ip.src.set(newSrc);
  ip.dst.set(newDst);
  return c;
}
