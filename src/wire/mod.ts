/**
 * Packet layer: typed views over raw IP packet bytes, parsed representations with emit, the
 * Internet checksum with incremental updates, and address/CIDR helpers. No I/O.
 *
 * Views (`Ipv4Packet`, `Ipv6Packet`, `TcpSegment`, `UdpDatagram`, `Icmpv4Message`,
 * `Icmpv6Message`) check lengths once in their static `view()` factory, which returns null for
 * malformed input and never throws; after that no accessor can fail.
 *
 * @example
 * ```ts
 * import { Ipv4Packet, IPPROTO_TCP, TcpSegment } from "./mod.ts";
 * function ports(packet: Uint8Array): [number, number] | null {
 *   const ip = Ipv4Packet.view(packet);
 *   if (ip === null || ip.protocol !== IPPROTO_TCP || ip.isFragment) return null;
 *   const tcp = TcpSegment.view(ip.payload);
 *   return tcp === null ? null : [tcp.srcPort, tcp.dstPort];
 * }
 * if (ports(new Uint8Array(10)) !== null) throw new Error("unexpected");
 * ```
 *
 * @module
 */

export * from "./protocol.ts";
export * from "./checksum.ts";
export * from "./address.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./tcp.ts";
export * from "./udp.ts";
export * from "./icmpv4.ts";
export * from "./icmpv6.ts";
