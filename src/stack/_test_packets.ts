/**
 * Test helpers: build IP/TCP/UDP packets as a local program's kernel would send them.
 *
 * @module
 */
import { parseAddress } from "../wire/address.ts";
import { emitIpv4 } from "../wire/ipv4.ts";
import { emitIpv6 } from "../wire/ipv6.ts";
import { IPPROTO_TCP, IPPROTO_UDP } from "../wire/protocol.ts";
import { emitTcp, type TcpRepr } from "../wire/tcp.ts";
import { emitUdp } from "../wire/udp.ts";

/** Parses a textual address, throwing on a typo. */
export function addr(text: string): Uint8Array {
  const a = parseAddress(text);
  if (a === null) throw new TypeError(`bad address ${text}`);
  return a;
}

function ip(src: Uint8Array, dst: Uint8Array, protocol: number, l4: Uint8Array): Uint8Array {
  const hl = src.length === 4 ? 20 : 40;
  const buf = new Uint8Array(hl + l4.length);
  buf.set(l4, hl);
  if (src.length === 4) {
    emitIpv4({ src, dst, protocol, ttl: 64, payloadLength: l4.length, dontFragment: true }, buf);
  } else {
    emitIpv6({ src, dst, nextHeader: protocol, hopLimit: 64, payloadLength: l4.length }, buf);
  }
  return buf;
}

/** A TCP packet `src:sport → dst:dport`. */
export function tcpPacket(
  src: string,
  sport: number,
  dst: string,
  dport: number,
  fields: Partial<TcpRepr> & { flags: number },
): Uint8Array {
  const s = addr(src), d = addr(dst);
  const repr: TcpRepr = {
    srcPort: sport,
    dstPort: dport,
    seq: 0,
    ack: 0,
    window: 65535,
    ...fields,
  };
  const l4 = new Uint8Array(60 + (repr.payload?.length ?? 0));
  const n = emitTcp(repr, l4, s, d);
  return ip(s, d, IPPROTO_TCP, l4.subarray(0, n));
}

/** A UDP packet `src:sport → dst:dport`. */
export function udpPacket(
  src: string,
  sport: number,
  dst: string,
  dport: number,
  payload: Uint8Array,
): Uint8Array {
  const s = addr(src), d = addr(dst);
  const l4 = new Uint8Array(8 + payload.length);
  emitUdp({ srcPort: sport, dstPort: dport, payload }, l4, s, d);
  return ip(s, d, IPPROTO_UDP, l4);
}
