/**
 * Checks the views, parsers, checksums and emitters against real Linux kernel traffic captured
 * between two network namespaces (tests/testdata/wire/make_kernel_pcap.sh → kernel.pcap), and
 * against tshark's reading of the same capture (kernel_tshark.json).
 */

import assert from "node:assert/strict";
import tsharkJson from "../../tests/testdata/wire/kernel_tshark.json" with { type: "json" };
import { formatAddress } from "./address.ts";
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
import { emitTcp, parseTcp, TCP_FIN, TCP_RST, TCP_SYN, TcpSegment } from "./tcp.ts";
import { emitUdp, UdpDatagram } from "./udp.ts";

/** One captured frame reduced to its IP packet. */
interface Frame {
  /** 1-based frame number, as tshark counts. */
  number: number;
  /** EtherType (0x0800 / 0x86dd / …); for raw-IP link types, derived from the version. */
  etherType: number;
  /** The IP packet (empty for non-IP frames). */
  ip: Uint8Array;
}

/**
 * A minimal pcap reader: the classic format in either byte order, microsecond or nanosecond
 * timestamps; link types 1 (Ethernet, header stripped) and 101/228/229 (raw IP).
 */
function readPcap(file: Uint8Array): Frame[] {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const magic = dv.getUint32(0, true);
  let le: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = false;
  else throw new Error(`not a pcap file (magic ${magic.toString(16)})`);
  const linkType = dv.getUint32(20, le) & 0x0fffffff;
  const frames: Frame[] = [];
  let off = 24;
  while (off + 16 <= file.length) {
    const caplen = dv.getUint32(off + 8, le);
    const data = file.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    const number = frames.length + 1;
    if (linkType === 1) {
      const etherType = (data[12] << 8) | data[13];
      const isIp = etherType === 0x0800 || etherType === 0x86dd;
      frames.push({ number, etherType, ip: isIp ? data.subarray(14) : data.subarray(0, 0) });
    } else if (linkType === 101 || linkType === 228 || linkType === 229) {
      const etherType = data[0] >> 4 === 6 ? 0x86dd : 0x0800;
      frames.push({ number, etherType, ip: data });
    } else {
      throw new Error(`unsupported pcap link type ${linkType}`);
    }
  }
  return frames;
}

type TsharkRow = Record<string, number | string | boolean>;
const tshark: TsharkRow[] = (tsharkJson as unknown as { packets: TsharkRow[] }).packets;
let cached: Frame[] | undefined;
/** The capture's frames, read on first use (needs read permission: `deno test -A`). */
function loadFrames(): Frame[] {
  cached ??= readPcap(
    Deno.readFileSync(new URL("../../tests/testdata/wire/kernel.pcap", import.meta.url)),
  );
  return cached;
}

/** The parts of one IP packet: addresses, upper-layer protocol and bytes. */
interface Parsed {
  src: Uint8Array;
  dst: Uint8Array;
  protocol: number;
  upper: Uint8Array;
  v4?: Ipv4Packet;
  v6?: Ipv6Packet;
}

function parse(f: Frame): Parsed {
  if (f.etherType === 0x0800) {
    const p = Ipv4Packet.view(f.ip);
    assert.ok(p !== null, `frame ${f.number}: Ipv4Packet.view() returned null`);
    assert.ok(p.verifyChecksum(), `frame ${f.number}: IPv4 header checksum`);
    assert.ok(!p.isFragment);
    return { src: p.src, dst: p.dst, protocol: p.protocol, upper: p.payload, v4: p };
  }
  const p = Ipv6Packet.view(f.ip);
  assert.ok(p !== null, `frame ${f.number}: Ipv6Packet.view() returned null`);
  const ul = p.upperLayer();
  assert.ok(ul !== null, `frame ${f.number}: upperLayer() returned null`);
  return {
    src: p.src,
    dst: p.dst,
    protocol: ul.protocol,
    upper: p.bytes.subarray(ul.offset),
    v6: p,
  };
}

Deno.test("kernel.pcap holds the expected kinds of traffic", () => {
  const frames = loadFrames();
  assert.equal(frames.length, tshark.length);
  const seen = new Set<string>();
  for (const f of frames) {
    if (f.ip.length === 0) continue;
    const p = parse(f);
    const fam = f.etherType === 0x0800 ? "4" : "6";
    if (p.protocol === IPPROTO_TCP) {
      const s = TcpSegment.view(p.upper)!;
      if (s.syn && parseTcp(s)?.options?.timestamp) seen.add(`tcp${fam} syn+options`);
      if (s.flags & TCP_FIN) seen.add(`tcp${fam} fin`);
      if (s.flags & TCP_RST) seen.add(`tcp${fam} rst`);
      if (s.payload.length > 1000) seen.add(`tcp${fam} data`);
    } else if (p.protocol === IPPROTO_UDP) {
      seen.add(`udp${fam}`);
    } else if (p.protocol === IPPROTO_ICMP || p.protocol === IPPROTO_ICMPV6) {
      const t = p.upper[0];
      seen.add(`icmp${fam} type ${t}`);
    }
    if (p.v6 !== undefined && p.v6.nextHeader === 0) seen.add("ipv6 hop-by-hop");
  }
  for (
    const kind of [
      "tcp4 syn+options",
      "tcp4 fin",
      "tcp4 rst",
      "tcp4 data",
      "tcp6 syn+options",
      "tcp6 fin",
      "tcp6 rst",
      "tcp6 data",
      "udp4",
      "udp6",
      "icmp4 type 8",
      "icmp4 type 0",
      "icmp4 type 3",
      "icmp6 type 128",
      "icmp6 type 129",
      "icmp6 type 1",
      "icmp6 type 135",
      "ipv6 hop-by-hop",
    ]
  ) {
    assert.ok(seen.has(kind), `no ${kind} in kernel.pcap`);
  }
});

Deno.test("kernel.pcap: every packet parses and every checksum verifies", () => {
  const frames = loadFrames();
  let checked = 0;
  for (const f of frames) {
    if (f.ip.length === 0) continue;
    const p = parse(f);
    const where = `frame ${f.number}`;
    switch (p.protocol) {
      case IPPROTO_TCP: {
        const s = TcpSegment.view(p.upper);
        assert.ok(s !== null, `${where}: TcpSegment.view() returned null`);
        assert.ok(parseTcp(s) !== null, `${where}: parseTcp() returned null`);
        assert.ok(s.verifyChecksum(p.src, p.dst), `${where}: TCP checksum`);
        break;
      }
      case IPPROTO_UDP: {
        const d = UdpDatagram.view(p.upper);
        assert.ok(d !== null, `${where}: UdpDatagram.view() returned null`);
        assert.notEqual(d.checksum, 0);
        assert.ok(d.verifyChecksum(p.src, p.dst), `${where}: UDP checksum`);
        break;
      }
      case IPPROTO_ICMP: {
        const m = Icmpv4Message.view(p.upper);
        assert.ok(m !== null && m.verifyChecksum(), `${where}: ICMP checksum`);
        break;
      }
      case IPPROTO_ICMPV6: {
        const m = Icmpv6Message.view(p.upper);
        assert.ok(m !== null && m.verifyChecksum(p.src, p.dst), `${where}: ICMPv6 checksum`);
        break;
      }
      default:
        assert.fail(`${where}: unexpected protocol ${p.protocol}`);
    }
    checked++;
  }
  assert.ok(checked >= 60, `only ${checked} IP packets`);
});

/**
 * Asserts `actual === row[field]`. tshark must have reported the field: a field missing from
 * the JSON (renamed by a tshark version, left out of the script's field list) fails instead of
 * being skipped.
 */
function same(row: TsharkRow, field: string, actual: number | string | boolean, where: string) {
  assert.ok(row[field] !== undefined, `${where}: tshark did not report ${field}`);
  const expected = typeof actual === "boolean"
    ? row[field] === 1 || row[field] === true
    : row[field];
  assert.equal(actual, expected, `${where}: ${field}`);
}

Deno.test("kernel.pcap: fields match tshark", () => {
  const frames = loadFrames();
  for (const f of frames) {
    const row = tshark[f.number - 1];
    const where = `frame ${f.number}`;
    assert.equal(row["frame.number"], f.number);
    same(row, "eth.type", f.etherType, where);
    if (f.ip.length === 0) continue;
    const p = parse(f);
    if (p.v4 !== undefined) {
      const ip = p.v4;
      same(row, "ip.src", formatAddress(ip.src), where);
      same(row, "ip.dst", formatAddress(ip.dst), where);
      same(row, "ip.id", ip.identification, where);
      same(row, "ip.ttl", ip.ttl, where);
      same(row, "ip.proto", ip.protocol, where);
      same(row, "ip.len", ip.totalLength, where);
      same(row, "ip.hdr_len", ip.headerLength, where);
      same(row, "ip.flags.df", ip.dontFragment, where);
      same(row, "ip.checksum", ip.checksum, where);
    } else {
      const ip = p.v6!;
      same(row, "ipv6.src", formatAddress(ip.src), where);
      same(row, "ipv6.dst", formatAddress(ip.dst), where);
      same(row, "ipv6.nxt", ip.nextHeader, where);
      same(row, "ipv6.hlim", ip.hopLimit, where);
      same(row, "ipv6.plen", ip.payloadLength, where);
      same(row, "ipv6.flow", ip.flowLabel, where);
      same(row, "ipv6.tclass", ip.trafficClass, where);
    }
    if (p.protocol === IPPROTO_TCP) {
      const s = TcpSegment.view(p.upper)!;
      const o = parseTcp(s)!.options!;
      same(row, "tcp.srcport", s.srcPort, where);
      same(row, "tcp.dstport", s.dstPort, where);
      same(row, "tcp.seq_raw", s.seq, where);
      same(row, "tcp.ack_raw", s.ack, where);
      same(row, "tcp.flags", s.flags, where);
      same(row, "tcp.hdr_len", s.headerLength, where);
      same(row, "tcp.len", s.payload.length, where);
      same(row, "tcp.window_size_value", s.window, where);
      same(row, "tcp.checksum", s.checksum, where);
      assert.equal(o.mss, row["tcp.options.mss_val"], `${where}: mss`);
      assert.equal(o.windowScale, row["tcp.options.wscale.shift"], `${where}: wscale`);
      assert.equal(o.sackPermitted, row["tcp.options.sack_perm"], `${where}: sack_perm`);
      assert.equal(o.timestamp?.value, row["tcp.options.timestamp.tsval"], `${where}: tsval`);
      assert.equal(o.timestamp?.echo, row["tcp.options.timestamp.tsecr"], `${where}: tsecr`);
    } else if (p.protocol === IPPROTO_UDP) {
      const d = UdpDatagram.view(p.upper)!;
      same(row, "udp.srcport", d.srcPort, where);
      same(row, "udp.dstport", d.dstPort, where);
      same(row, "udp.length", d.length, where);
      same(row, "udp.checksum", d.checksum, where);
    } else if (p.protocol === IPPROTO_ICMP) {
      const m = Icmpv4Message.view(p.upper)!;
      same(row, "icmp.type", m.type, where);
      same(row, "icmp.code", m.code, where);
      same(row, "icmp.checksum", m.checksum, where);
      if (m.type === 0 || m.type === 8) {
        // Only echo messages have an identifier and a sequence number.
        same(row, "icmp.ident", m.identifier, where);
        same(row, "icmp.seq", m.sequence, where);
      }
    } else if (p.protocol === IPPROTO_ICMPV6) {
      const m = Icmpv6Message.view(p.upper)!;
      same(row, "icmpv6.type", m.type, where);
      same(row, "icmpv6.code", m.code, where);
      same(row, "icmpv6.checksum", m.checksum, where);
      if (m.type === 128 || m.type === 129) {
        same(row, "icmpv6.echo.identifier", m.identifier, where);
        same(row, "icmpv6.echo.sequence_number", m.sequence, where);
      }
    }
    // tshark validated every checksum itself (status 1 = good).
    for (const [k, v] of Object.entries(row)) {
      if (k.endsWith("checksum.status")) assert.equal(v, 1, `${where}: tshark says ${k} bad`);
    }
  }
});

Deno.test("emit*() reproduces the kernel's TCP, UDP and ICMP messages byte for byte", () => {
  const frames = loadFrames();
  let tcp = 0;
  let other = 0;
  let headers = 0;
  for (const f of frames) {
    if (f.ip.length === 0) continue;
    const p = parse(f);
    const out = new Uint8Array(p.upper.length);
    let n = -1;
    if (p.protocol === IPPROTO_TCP) {
      // Linux lays out options exactly as emitTcp() does.
      n = emitTcp(parseTcp(TcpSegment.view(p.upper)!)!, out, p.src, p.dst);
      tcp++;
    } else if (p.protocol === IPPROTO_UDP) {
      const d = UdpDatagram.view(p.upper)!;
      n = emitUdp(
        { srcPort: d.srcPort, dstPort: d.dstPort, payload: d.payload },
        out,
        p.src,
        p.dst,
      );
      other++;
    } else if (p.protocol === IPPROTO_ICMP) {
      const m = Icmpv4Message.view(p.upper)!;
      const echo = parseIcmpv4Echo(m);
      if (echo !== null) n = emitIcmpv4Echo(echo, out);
      else if (m.type === ICMPV4_DEST_UNREACHABLE) n = emitIcmpv4Unreachable(m.code, m.body, out);
      else continue;
      other++;
    } else if (p.protocol === IPPROTO_ICMPV6) {
      const m = Icmpv6Message.view(p.upper)!;
      const echo = parseIcmpv6Echo(m);
      if (echo !== null) n = emitIcmpv6Echo(echo, out, p.src, p.dst);
      else if (m.type === ICMPV6_DEST_UNREACHABLE) {
        n = emitIcmpv6Unreachable(m.code, m.body, out, p.src, p.dst);
      } else continue;
      other++;
    }
    assert.equal(n, p.upper.length, `frame ${f.number}: length`);
    assert.deepEqual(out, p.upper, `frame ${f.number}: bytes`);

    // The IP header too, where the emitter can express it (no options, DSCP/ECN 0).
    const hdr = new Uint8Array(40);
    if (p.v4 !== undefined && p.v4.headerLength === 20 && p.v4.bytes[1] === 0) {
      emitIpv4(parseIpv4(p.v4), hdr);
      assert.deepEqual(hdr.subarray(0, 20), p.v4.bytes.subarray(0, 20), `frame ${f.number}`);
      headers++;
    } else if (p.v6 !== undefined && p.v6.nextHeader === p.protocol) {
      emitIpv6(parseIpv6(p.v6), hdr);
      assert.deepEqual(hdr, p.v6.bytes.subarray(0, 40), `frame ${f.number}`);
      headers++;
    }
  }
  assert.ok(tcp >= 30 && other >= 15 && headers >= 50, `${tcp} ${other} ${headers}`);
});

Deno.test("emitTcp() lays out SYN options as Linux does, for every SYN in kernel.pcap", () => {
  const frames = loadFrames();
  // How many SYNs (and SYN-ACKs) there are, by tshark's reading, not ours.
  const synRows = tshark.filter((r) => typeof r["tcp.flags"] === "number" && r["tcp.flags"] & 2);
  let syns = 0;
  for (const f of frames) {
    if (f.ip.length === 0) continue;
    const p = parse(f);
    if (p.protocol !== IPPROTO_TCP) continue;
    const s = TcpSegment.view(p.upper)!;
    if (!(s.flags & TCP_SYN)) continue;
    syns++;
    // Re-emit from the parsed fields: the options kconnect writes ...
    const out = new Uint8Array(p.upper.length);
    const n = emitTcp(parseTcp(s)!, out, p.src, p.dst);
    const o = out.subarray(20, (out[12] >> 4) * 4);
    const where = `frame ${f.number}`;
    assert.equal(n, p.upper.length, where);
    // ... are MSS, SACK-permitted + timestamps, NOP + window scale, in 20 bytes ...
    assert.equal(o.length, 20, where);
    assert.deepEqual([o[0], o[1], o[4], o[5], o[6], o[7], o[16], o[17], o[18]], [
      2,
      4,
      4,
      2,
      8,
      10,
      1,
      3,
      3,
    ], where);
    // ... byte for byte what the kernel sent.
    assert.deepEqual(o, s.options, where);
  }
  assert.equal(syns, synRows.length, "SYNs seen vs tshark's count");
  assert.ok(syns >= 4, `only ${syns} SYNs (want SYN and SYN-ACK over IPv4 and IPv6)`);
});
