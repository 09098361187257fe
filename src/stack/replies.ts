/**
 * Packets the engine makes up itself and writes into the TUN: a TCP RST for a refused connect,
 * ICMP unreachable for an unreachable or forbidden destination, and UDP replies. Each takes
 * the addresses as the local program should see them (`from` is the far end).
 *
 * @module
 */
import { emitIpv4 } from "../wire/ipv4.ts";
import { emitIpv6 } from "../wire/ipv6.ts";
import { emitTcp, TCP_ACK, TCP_RST } from "../wire/tcp.ts";
import { emitUdp } from "../wire/udp.ts";
import { emitIcmpv4Unreachable } from "../wire/icmpv4.ts";
import { emitIcmpv6Unreachable } from "../wire/icmpv6.ts";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from "../wire/protocol.ts";

const TTL = 64;

function ipHeaderLength(family: 4 | 6): number {
  return family === 4 ? 20 : 40;
}

function emitIp(
  buf: Uint8Array,
  from: Uint8Array,
  to: Uint8Array,
  protocol: number,
  payloadLength: number,
): void {
  if (from.length === 4) {
    emitIpv4({ src: from, dst: to, protocol, ttl: TTL, payloadLength, dontFragment: true }, buf);
  } else {
    emitIpv6({ src: from, dst: to, nextHeader: protocol, hopLimit: TTL, payloadLength }, buf);
  }
}

/**
 * The reset a host sends for a segment to no connection (RFC 9293 3.10.7.1): for a segment
 * without ACK (a SYN to a closed port), RST|ACK with sequence 0 acknowledging `ack`; for one
 * with ACK, a bare RST whose sequence number is that segment's acknowledgment (`seq`).
 */
export function tcpReset(
  from: Uint8Array,
  fromPort: number,
  to: Uint8Array,
  toPort: number,
  ack: number | null,
  seq = 0,
): Uint8Array {
  const family = from.length === 4 ? 4 : 6;
  const hl = ipHeaderLength(family);
  const buf = new Uint8Array(hl + 20);
  const n = emitTcp(
    {
      srcPort: fromPort,
      dstPort: toPort,
      seq: seq >>> 0,
      ack: ack === null ? 0 : ack >>> 0,
      flags: ack === null ? TCP_RST : TCP_RST | TCP_ACK,
      window: 0,
    },
    buf.subarray(hl),
    from,
    to,
  );
  emitIp(buf, from, to, IPPROTO_TCP, n);
  return buf;
}

/** A UDP datagram from the far end to the local program. */
export function udpReply(
  from: Uint8Array,
  fromPort: number,
  to: Uint8Array,
  toPort: number,
  payload: Uint8Array,
): Uint8Array {
  const family = from.length === 4 ? 4 : 6;
  const hl = ipHeaderLength(family);
  const buf = new Uint8Array(hl + 8 + payload.length);
  const n = emitUdp({ srcPort: fromPort, dstPort: toPort, payload }, buf.subarray(hl), from, to);
  emitIp(buf, from, to, IPPROTO_UDP, n);
  return buf;
}

/** Which ICMP destination-unreachable to send. */
export type UnreachableKind = "host" | "port" | "prohibited";

const V4_CODES: Record<UnreachableKind, number> = { host: 1, port: 3, prohibited: 13 };
const V6_CODES: Record<UnreachableKind, number> = { host: 3, port: 4, prohibited: 1 };

/**
 * ICMP destination unreachable about `invoking` (the program's own packet), sent from
 * `from` (the destination it tried) back to the program's address `to`.
 */
export function icmpUnreachable(
  kind: UnreachableKind,
  invoking: Uint8Array,
  from: Uint8Array,
  to: Uint8Array,
): Uint8Array {
  if (from.length === 4) {
    const buf = new Uint8Array(576);
    const n = emitIcmpv4Unreachable(V4_CODES[kind], invoking, buf.subarray(20));
    emitIp(buf, from, to, IPPROTO_ICMP, n);
    return buf.subarray(0, 20 + n);
  }
  const buf = new Uint8Array(1280);
  const n = emitIcmpv6Unreachable(V6_CODES[kind], invoking, buf.subarray(40), from, to);
  emitIp(buf, from, to, IPPROTO_ICMPV6, n);
  return buf.subarray(0, 40 + n);
}
