import assert from "node:assert/strict";
import { prng, randomBytes } from "./_testing.ts";
import { adjust, adjust16, checksum, finish, pseudoHeaderSum, sum16 } from "./checksum.ts";
import { emitIpv4, Ipv4Packet } from "./ipv4.ts";
import { emitIpv6, Ipv6Packet } from "./ipv6.ts";
import { IPPROTO_TCP, IPPROTO_UDP } from "./protocol.ts";
import { emitTcp, TCP_ACK, TcpSegment } from "./tcp.ts";
import { adjustUdpChecksum, emitUdp, UdpDatagram } from "./udp.ts";

/** Slow, obvious reference: add 16-bit words one at a time with end-around carry. */
function referenceSum(data: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < data.length; i += 2) {
    sum += (data[i] << 8) | (i + 1 < data.length ? data[i + 1] : 0);
    if (sum > 0xffff) sum -= 0xffff;
  }
  return sum;
}

Deno.test("sum16() and checksum() give the RFC 1071 section 3 example", () => {
  const data = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(sum16(data), 0xddf2);
  assert.equal(checksum(data), 0x220d);
  assert.equal(finish(0xddf2), 0x220d);
});

Deno.test("sum16() handles empty, odd-length and carry-heavy input", () => {
  const cases: [number[], number][] = [
    [[], 0],
    [[0x01], 0x0100],
    [[0xab, 0xcd, 0xef], 0xabcd + 0xef00 - 0xffff],
    [[0xff, 0xff], 0xffff],
    [[0xff, 0xff, 0x00, 0x01], 0x0001],
    [[0x80, 0x00, 0x80, 0x00], 0x0001],
  ];
  for (const [bytes, expected] of cases) {
    assert.equal(sum16(new Uint8Array(bytes)), expected, `sum16(${bytes})`);
  }
  // 70000 bytes of 0xff: the unfolded sum passes 2^32.
  const big = new Uint8Array(140000).fill(0xff);
  assert.equal(sum16(big), 0xffff);
  assert.equal(checksum(big), 0);
  assert.equal(finish(0x1_0000_fffe), finish(0xffff));
});

Deno.test("sum16() matches a byte-by-byte reference for random input", () => {
  const next = prng(1071);
  for (let n = 0; n < 600; n++) {
    const data = randomBytes(next, n);
    const initial = next() & 0xffff;
    assert.equal(sum16(data, initial), referenceSum(data, initial) || (initial ? 0xffff : 0));
  }
});

Deno.test("sum16() chains through initial across even-length pieces", () => {
  const next = prng(7);
  for (let i = 0; i < 200; i++) {
    const a = randomBytes(next, (next() % 50) * 2);
    const b = randomBytes(next, next() % 101);
    const whole = new Uint8Array(a.length + b.length);
    whole.set(a);
    whole.set(b, a.length);
    assert.equal(sum16(b, sum16(a)), sum16(whole));
  }
});

Deno.test("pseudoHeaderSum() equals the sum of the RFC pseudo-header bytes", () => {
  const next = prng(9293);
  for (let i = 0; i < 500; i++) {
    const v6 = (i & 1) === 1;
    const alen = v6 ? 16 : 4;
    const src = randomBytes(next, alen);
    const dst = randomBytes(next, alen);
    const proto = next() & 0xff;
    const length = v6 ? next() >>> (next() & 31) : next() & 0xffff;
    let ph: Uint8Array;
    if (v6) {
      ph = new Uint8Array(40);
      ph.set(src);
      ph.set(dst, 16);
      new DataView(ph.buffer).setUint32(32, length);
      ph[39] = proto;
    } else {
      ph = new Uint8Array(12);
      ph.set(src);
      ph.set(dst, 4);
      ph[9] = proto;
      new DataView(ph.buffer).setUint16(10, length);
    }
    assert.equal(pseudoHeaderSum(src, dst, proto, length), sum16(ph));
  }
});

Deno.test("adjust16() gives the RFC 1624 section 4 example", () => {
  // Equation 3 yields 0x0000 where equation 2 would wrongly yield 0xffff.
  assert.equal(adjust16(0xdd2f, 0x5555, 0x3285), 0x0000);
  assert.equal(adjust16(0x1234, 0xabcd, 0xabcd), 0x1234);
});

/** A random IPv4 or IPv6 TCP/UDP packet with correct checksums. */
function randomPacket(next: () => number, v6: boolean, udp: boolean): Uint8Array {
  const alen = v6 ? 16 : 4;
  const src = randomBytes(next, alen);
  const dst = randomBytes(next, alen);
  const payload = randomBytes(next, next() % 64);
  const l4 = new Uint8Array(100);
  const n = udp
    ? emitUdp({ srcPort: next() & 0xffff, dstPort: next() & 0xffff, payload }, l4, src, dst)
    : emitTcp(
      {
        srcPort: next() & 0xffff,
        dstPort: next() & 0xffff,
        seq: next(),
        ack: next(),
        flags: TCP_ACK,
        window: next() & 0xffff,
        payload,
      },
      l4,
      src,
      dst,
    );
  const ipLen = v6 ? 40 : 20;
  const pkt = new Uint8Array(ipLen + n);
  const repr = {
    src,
    dst,
    protocol: udp ? IPPROTO_UDP : IPPROTO_TCP,
    nextHeader: udp ? IPPROTO_UDP : IPPROTO_TCP,
    ttl: 64,
    hopLimit: 64,
    payloadLength: n,
    identification: next() & 0xffff,
  };
  if (v6) emitIpv6(repr, pkt);
  else emitIpv4(repr, pkt);
  pkt.set(l4.subarray(0, n), ipLen);
  return pkt;
}

Deno.test("adjust()/adjust16() equal full recomputation for random NAT rewrites", () => {
  const next = prng(1624);
  for (let i = 0; i < 4000; i++) {
    const v6 = (i & 1) === 1;
    const udp = (i & 2) === 2;
    const pkt = randomPacket(next, v6, udp);
    const ip4 = v6 ? null : Ipv4Packet.view(pkt)!;
    const ip6 = v6 ? Ipv6Packet.view(pkt)! : null;
    const src = (ip4 ?? ip6!).src;
    const dst = (ip4 ?? ip6!).dst;
    const upper = ip4 ? ip4.payload : ip6!.payload;
    const l4 = udp ? UdpDatagram.view(upper)! : TcpSegment.view(upper)!;
    const rewriteSrc = (next() & 1) === 1;
    const addr = rewriteSrc ? src : dst;
    const newAddr = randomBytes(next, addr.length);
    const newPort = next() & 0xffff;

    // Incremental: addresses (IP header and pseudo-header) and one port.
    let l4Check = l4.checksum;
    const oldPort = rewriteSrc ? l4.srcPort : l4.dstPort;
    if (udp) {
      l4Check = adjustUdpChecksum(l4Check, addr, newAddr);
      const o = new Uint8Array([oldPort >> 8, oldPort & 0xff]);
      const n = new Uint8Array([newPort >> 8, newPort & 0xff]);
      l4Check = adjustUdpChecksum(l4Check, o, n);
    } else {
      l4Check = adjust(l4Check, addr, newAddr);
      l4Check = adjust16(l4Check, oldPort, newPort);
    }
    const ipCheck = ip4 ? adjust(ip4.checksum, addr, newAddr) : 0;
    addr.set(newAddr);
    if (rewriteSrc) l4.srcPort = newPort;
    else l4.dstPort = newPort;

    // Full recomputation.
    l4.fillChecksum(src, dst);
    assert.equal(l4Check, l4.checksum, `case ${i}: transport checksum`);
    assert.ok(l4.verifyChecksum(src, dst));
    if (ip4) {
      ip4.fillChecksum();
      assert.equal(ipCheck, ip4.checksum, `case ${i}: IPv4 header checksum`);
    }
  }
});

Deno.test("adjust16() equals recomputation for every port value, including 0x0000 results", () => {
  const next = prng(65535);
  for (const v6 of [false, true]) {
    const pkt = randomPacket(next, v6, false);
    const ip = v6 ? Ipv6Packet.view(pkt)! : Ipv4Packet.view(pkt)!;
    const seg = TcpSegment.view(ip.payload)!;
    let zeros = 0;
    let prevPort = seg.dstPort;
    let check = seg.checksum;
    for (let port = 0; port <= 0xffff; port++) {
      check = adjust16(check, prevPort, port);
      seg.dstPort = port;
      prevPort = port;
      seg.fillChecksum(ip.src, ip.dst);
      assert.equal(check, seg.checksum, `port ${port}`);
      assert.notEqual(check, 0xffff);
      if (check === 0) zeros++;
    }
    // Exactly one port value makes the checksum 0x0000; the incremental path starts from it
    // on the next step, so the 0x0000 -> x transition is covered too.
    assert.equal(zeros, 1);
  }
});

Deno.test("adjustUdpChecksum() keeps 0 (none) and sends a computed 0 as 0xffff", () => {
  const next = prng(768);
  const pkt = randomPacket(next, false, true);
  const ip = Ipv4Packet.view(pkt)!;
  const d = UdpDatagram.view(ip.payload)!;
  let prevPort = d.dstPort;
  let check = d.checksum;
  let ffff = 0;
  for (let port = 0; port <= 0xffff; port++) {
    const o = new Uint8Array([prevPort >> 8, prevPort & 0xff]);
    const n = new Uint8Array([port >> 8, port & 0xff]);
    check = adjustUdpChecksum(check, o, n);
    d.dstPort = port;
    prevPort = port;
    d.fillChecksum(ip.src, ip.dst);
    assert.equal(check, d.checksum, `port ${port}`);
    assert.notEqual(check, 0);
    if (check === 0xffff) {
      ffff++;
      assert.ok(d.verifyChecksum(ip.src, ip.dst));
    }
  }
  assert.equal(ffff, 1);
  // No checksum (0, IPv4) stays no checksum.
  assert.equal(adjustUdpChecksum(0, new Uint8Array([1, 2]), new Uint8Array([3, 4])), 0);
});

Deno.test("adjust() does not change the checksum when the bytes do not change", () => {
  const a = new Uint8Array([10, 0, 0, 1]);
  for (const c of [0x0000, 0x1234, 0xfffe]) assert.equal(adjust(c, a, a.slice()), c);
});
