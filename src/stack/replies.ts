/**
 * Packets the engine makes up itself and writes into the TUN: a TCP RST for a refused connect,
 * ICMP unreachable for an unreachable or forbidden destination, and UDP replies. Each takes
 * the addresses as the local program should see them (`from` is the far end). Each is built in
 * place after `TUN_HEADROOM` bytes of its own buffer (`packet_buffer.ts`), so the
 * engine writes it to the TUN without a copy.
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
import { allocPacket } from "./packet_buffer.ts";

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

/** One end of a packet: address bytes (4 or 16) and port. */
export interface AddrPort {
  address: Uint8Array;
  port: number;
}

/**
 * What a reset answers (RFC 9293 3.10.7.1): a segment without ACK (a SYN to a closed port) gets
 * RST|ACK with sequence 0 acknowledging `ack`; one with ACK gets a bare RST whose sequence
 * number is that segment's acknowledgment (`seq`).
 */
export type ResetOf = { ack: number } | { seq: number };

/** The reset a host sends from `from` to `to` for a segment to no connection (see {@linkcode ResetOf}). */
export function tcpReset(from: AddrPort, to: AddrPort, of: ResetOf): Uint8Array {
  const family = from.address.length === 4 ? 4 : 6;
  const hl = ipHeaderLength(family);
  const buf = allocPacket(hl + 20);
  const acks = "ack" in of;
  const n = emitTcp(
    {
      srcPort: from.port,
      dstPort: to.port,
      seq: acks ? 0 : of.seq >>> 0,
      ack: acks ? of.ack >>> 0 : 0,
      flags: acks ? TCP_RST | TCP_ACK : TCP_RST,
      window: 0,
    },
    buf.subarray(hl),
    from.address,
    to.address,
  );
  emitIp(buf, from.address, to.address, IPPROTO_TCP, n);
  return buf;
}

/** A UDP datagram from the far end `from` to the local program at `to`. */
export function udpReply(from: AddrPort, to: AddrPort, payload: Uint8Array): Uint8Array {
  const family = from.address.length === 4 ? 4 : 6;
  const hl = ipHeaderLength(family);
  const buf = allocPacket(hl + 8 + payload.length);
  const n = emitUdp(
    { srcPort: from.port, dstPort: to.port, payload },
    buf.subarray(hl),
    from.address,
    to.address,
  );
  emitIp(buf, from.address, to.address, IPPROTO_UDP, n);
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
    const buf = allocPacket(576);
    const n = emitIcmpv4Unreachable(V4_CODES[kind], invoking, buf.subarray(20));
    emitIp(buf, from, to, IPPROTO_ICMP, n);
    return buf.subarray(0, 20 + n);
  }
  const buf = allocPacket(1280);
  const n = emitIcmpv6Unreachable(V6_CODES[kind], invoking, buf.subarray(40), from, to);
  emitIp(buf, from, to, IPPROTO_ICMPV6, n);
  return buf.subarray(0, 40 + n);
}
