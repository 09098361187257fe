/**
 * Checks every view, parser and emitter against packets built by scapy
 * (tests/testdata/wire/make_vectors.py → vectors.json), field by field.
 */

import assert from "node:assert/strict";
import { fromHex, toHex, vectors } from "./_testing.ts";
import { formatAddress, parseAddress } from "./address.ts";
import {
  emitIcmpv4Echo,
  emitIcmpv4Unreachable,
  ICMPV4_DEST_UNREACHABLE,
  Icmpv4Message,
  parseIcmpv4Echo,
} from "./icmpv4.ts";
import {
  emitIcmpv6Echo,
  emitIcmpv6Unreachable,
  ICMPV6_DEST_UNREACHABLE,
  Icmpv6Message,
  parseIcmpv6Echo,
} from "./icmpv6.ts";
import { emitIpv4, Ipv4Packet, parseIpv4 } from "./ipv4.ts";
import { emitIpv6, Ipv6Packet, parseIpv6 } from "./ipv6.ts";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from "./protocol.ts";
import {
  emitTcp,
  parseTcp,
  parseTcpOptions,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  tcpHeaderLength,
  TcpSegment,
} from "./tcp.ts";
import { emitUdp, UdpDatagram } from "./udp.ts";

Deno.test("scapy vectors are present", () => {
  assert.ok(vectors.length >= 50, `only ${vectors.length} vectors`);
});

for (const v of vectors) {
  Deno.test(`scapy vector "${v.name}": views, parse and checksums match scapy`, () => {
    const buf = fromHex(v.hex);
    const src = parseAddress(v.ip.src)!;
    const dst = parseAddress(v.ip.dst)!;
    assert.ok(src !== null && dst !== null);
    let ipBytes: Uint8Array;
    if (v.ip.version === 4) {
      assert.equal(Ipv6Packet.view(buf), null);
      const p = Ipv4Packet.view(buf);
      assert.ok(p !== null, "Ipv4Packet.view() returned null");
      assert.equal(p.bytes.length, v.ip.len);
      assert.equal(p.bytes.length, buf.length - (v.padding ?? 0));
      assert.equal(p.headerLength, v.ip.ihl! * 4);
      assert.equal(p.totalLength, v.ip.len);
      assert.equal(p.dscp, v.ip.tos! >> 2);
      assert.equal(p.ecn, v.ip.tos! & 3);
      assert.equal(p.identification, v.ip.id);
      assert.equal(p.dontFragment, v.ip.df);
      assert.equal(p.moreFragments, v.ip.mf);
      assert.equal(p.fragmentOffset, v.ip.frag! * 8);
      assert.equal(p.isFragment, v.ip.mf || v.ip.frag! > 0);
      assert.equal(p.ttl, v.ip.ttl);
      assert.equal(p.protocol, v.ip.proto);
      assert.equal(p.checksum, v.ip.chksum);
      assert.deepEqual(p.src, src);
      assert.deepEqual(p.dst, dst);
      assert.equal(formatAddress(p.src), v.ip.src);
      assert.equal(formatAddress(p.dst), v.ip.dst);
      assert.equal(p.verifyChecksum(), v.ip.chksum_ok);
      assert.equal(p.payload.length, v.ip.len! - v.ip.ihl! * 4);
      assert.equal(p.options.length, v.ip.ihl! * 4 - 20);
      const r = parseIpv4(p);
      assert.deepEqual(r, {
        src,
        dst,
        protocol: v.ip.proto,
        ttl: v.ip.ttl,
        payloadLength: v.ip.len! - v.ip.ihl! * 4,
        identification: v.ip.id,
        dontFragment: v.ip.df,
      });
      const before = p.checksum;
      p.fillChecksum();
      assert.equal(p.checksum, before);
      ipBytes = p.bytes;
    } else {
      assert.equal(Ipv4Packet.view(buf), null);
      const p = Ipv6Packet.view(buf);
      assert.ok(p !== null, "Ipv6Packet.view() returned null");
      assert.equal(p.bytes.length, 40 + v.ip.plen!);
      assert.equal(p.bytes.length, buf.length - (v.padding ?? 0));
      assert.equal(p.trafficClass, v.ip.tc);
      assert.equal(p.flowLabel, v.ip.fl);
      assert.equal(p.payloadLength, v.ip.plen);
      assert.equal(p.nextHeader, v.ip.nh);
      assert.equal(p.hopLimit, v.ip.hlim);
      assert.deepEqual(p.src, src);
      assert.deepEqual(p.dst, dst);
      assert.equal(formatAddress(p.src), v.ip.src);
      assert.equal(formatAddress(p.dst), v.ip.dst);
      assert.equal(p.payload.length, v.ip.plen);
      assert.deepEqual(p.upperLayer(), { protocol: v.l4.proto, offset: v.l4.offset });
      assert.deepEqual(parseIpv6(p), {
        src,
        dst,
        nextHeader: v.ip.nh,
        hopLimit: v.ip.hlim,
        payloadLength: v.ip.plen,
        trafficClass: v.ip.tc,
        flowLabel: v.ip.fl,
      });
      ipBytes = p.bytes;
    }
    const upper = ipBytes.subarray(v.l4.offset);

    if (v.tcp !== undefined) {
      const t = v.tcp;
      assert.equal(v.l4.proto, IPPROTO_TCP);
      const s = TcpSegment.view(upper);
      assert.ok(s !== null, "TcpSegment.view() returned null");
      assert.equal(s.bytes.length, upper.length);
      assert.equal(s.srcPort, t.sport);
      assert.equal(s.dstPort, t.dport);
      assert.equal(s.seq, t.seq);
      assert.equal(s.ack, t.ack);
      assert.equal(s.headerLength, t.dataofs * 4);
      assert.equal(s.flags, t.flags);
      assert.equal(s.fin, (t.flags & TCP_FIN) !== 0);
      assert.equal(s.syn, (t.flags & TCP_SYN) !== 0);
      assert.equal(s.rst, (t.flags & TCP_RST) !== 0);
      assert.equal(s.psh, (t.flags & TCP_PSH) !== 0);
      assert.equal(s.ackFlag, (t.flags & TCP_ACK) !== 0);
      assert.equal(s.window, t.window);
      assert.equal(s.checksum, t.chksum);
      assert.equal(s.urgentPointer, t.urgptr);
      assert.equal(s.options.length, t.dataofs * 4 - 20);
      assert.equal(toHex(s.payload), t.payload);
      assert.deepEqual(parseTcpOptions(s.options), t.options);
      assert.equal(s.verifyChecksum(src, dst), t.chksum_ok);
      assert.ok(t.chksum_ok);
      const r = parseTcp(s);
      assert.ok(r !== null);
      assert.deepEqual(r, {
        srcPort: t.sport,
        dstPort: t.dport,
        seq: t.seq,
        ack: t.ack,
        flags: t.flags,
        window: t.window,
        urgentPointer: t.urgptr,
        options: t.options,
        payload: fromHex(t.payload),
      });
      s.fillChecksum(src, dst);
      assert.equal(s.checksum, t.chksum);
    }

    if (v.udp !== undefined) {
      const u = v.udp;
      assert.equal(v.l4.proto, IPPROTO_UDP);
      const d = UdpDatagram.view(upper);
      assert.ok(d !== null, "UdpDatagram.view() returned null");
      assert.equal(d.srcPort, u.sport);
      assert.equal(d.dstPort, u.dport);
      assert.equal(d.length, u.len);
      assert.equal(d.bytes.length, u.len);
      assert.equal(d.checksum, u.chksum);
      assert.equal(toHex(d.payload), u.payload);
      assert.equal(d.verifyChecksum(src, dst), u.chksum_ok);
      assert.ok(u.chksum_ok);
      if (u.chksum !== 0) {
        d.fillChecksum(src, dst);
        assert.equal(d.checksum, u.chksum);
      }
    }

    if (v.icmp !== undefined) {
      const c = v.icmp;
      assert.equal(v.l4.proto, IPPROTO_ICMP);
      const m = Icmpv4Message.view(upper);
      assert.ok(m !== null);
      assert.equal(m.type, c.type);
      assert.equal(m.code, c.code);
      assert.equal(m.checksum, c.chksum);
      if (c.id !== null) assert.equal(m.identifier, c.id);
      if (c.seq !== null) assert.equal(m.sequence, c.seq);
      assert.equal(toHex(m.body), c.body);
      assert.equal(m.verifyChecksum(), c.chksum_ok);
      assert.ok(c.chksum_ok);
      assert.equal(parseIcmpv4Echo(m) !== null, c.type === 0 || c.type === 8);
    }

    if (v.icmpv6 !== undefined) {
      const c = v.icmpv6;
      assert.equal(v.l4.proto, IPPROTO_ICMPV6);
      const m = Icmpv6Message.view(upper);
      assert.ok(m !== null);
      assert.equal(m.type, c.type);
      assert.equal(m.code, c.code);
      assert.equal(m.checksum, c.chksum);
      if (c.id !== null) assert.equal(m.identifier, c.id);
      if (c.seq !== null) assert.equal(m.sequence, c.seq);
      assert.equal(toHex(m.body), c.body);
      assert.equal(m.verifyChecksum(src, dst), c.chksum_ok);
      assert.ok(c.chksum_ok);
      assert.equal(parseIcmpv6Echo(m) !== null, c.type === 128 || c.type === 129);
    }
  });

  if (!v.emit) continue;

  Deno.test(`scapy vector "${v.name}": emit reproduces scapy's bytes`, () => {
    const expected = fromHex(v.hex).subarray(0, fromHex(v.hex).length - (v.padding ?? 0));
    const out = new Uint8Array(expected.length + 16).fill(0xee);
    const src = parseAddress(v.ip.src)!;
    const dst = parseAddress(v.ip.dst)!;
    const payloadLength = expected.length - v.l4.offset;
    let off: number;
    if (v.ip.version === 4) {
      off = emitIpv4({
        src,
        dst,
        protocol: v.ip.proto!,
        ttl: v.ip.ttl!,
        payloadLength,
        identification: v.ip.id,
        dontFragment: v.ip.df,
      }, out);
      assert.equal(off, 20);
    } else {
      off = emitIpv6({
        src,
        dst,
        nextHeader: v.ip.nh!,
        hopLimit: v.ip.hlim!,
        payloadLength,
        trafficClass: v.ip.tc,
        flowLabel: v.ip.fl,
      }, out);
      assert.equal(off, 40);
    }
    const l4 = out.subarray(off);
    let n = -1;
    if (v.tcp !== undefined) {
      const t = v.tcp;
      const repr = {
        srcPort: t.sport,
        dstPort: t.dport,
        seq: t.seq,
        ack: t.ack,
        flags: t.flags,
        window: t.window,
        urgentPointer: t.urgptr,
        options: t.options,
        payload: fromHex(t.payload),
      };
      assert.equal(tcpHeaderLength(repr), t.dataofs * 4);
      n = emitTcp(repr, l4, src, dst);
    } else if (v.udp !== undefined) {
      const u = v.udp;
      n = emitUdp(
        { srcPort: u.sport, dstPort: u.dport, payload: fromHex(u.payload) },
        l4,
        src,
        dst,
      );
    } else if (v.icmp !== undefined) {
      const c = v.icmp;
      n = c.type === ICMPV4_DEST_UNREACHABLE
        ? emitIcmpv4Unreachable(c.code, fromHex(c.body), l4)
        : emitIcmpv4Echo(
          { reply: c.type === 0, identifier: c.id!, sequence: c.seq!, payload: fromHex(c.body) },
          l4,
        );
    } else if (v.icmpv6 !== undefined) {
      const c = v.icmpv6;
      n = c.type === ICMPV6_DEST_UNREACHABLE
        ? emitIcmpv6Unreachable(c.code, fromHex(c.body), l4, src, dst)
        : emitIcmpv6Echo(
          { reply: c.type === 129, identifier: c.id!, sequence: c.seq!, payload: fromHex(c.body) },
          l4,
          src,
          dst,
        );
    }
    assert.equal(n, payloadLength);
    assert.equal(toHex(out.subarray(0, off + n)), toHex(expected));
    assert.equal(out[off + n], 0xee, "emit wrote past the end of the packet");
  });
}
