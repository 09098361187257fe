import assert from "node:assert/strict";
import { parseAddress } from "./address.ts";
import { adjust } from "./checksum.ts";
import { emitIpv4, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4Packet, parseIpv4 } from "./ipv4.ts";

const SRC = parseAddress("10.0.0.1")!;
const DST = parseAddress("10.96.0.10")!;

function packet(payloadLength = 8, extra = 0): Uint8Array {
  const buf = new Uint8Array(20 + payloadLength + extra);
  emitIpv4({ src: SRC, dst: DST, protocol: IPPROTO_UDP, ttl: 64, payloadLength }, buf);
  return buf;
}

Deno.test("protocol constants have their IANA values", () => {
  assert.deepEqual([IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP], [1, 6, 17]);
});

Deno.test("emitIpv4() writes a 20-byte header with DF, id 0 and a valid checksum by default", () => {
  const buf = packet();
  // Checksum by hand (RFC 1071): 0x4500 + 0x001c + 0x0000 + 0x4000 + 0x4011 + 0x0a00 + 0x0001
  // + 0x0a60 + 0x000a = 0xd998, no carry; its complement is 0x2667 (scapy agrees).
  assert.deepEqual(
    Array.from(buf.subarray(0, 12)),
    [0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0x26, 0x67],
  );
  const p = Ipv4Packet.view(buf)!;
  assert.ok(p.verifyChecksum());
  assert.ok(p.dontFragment && !p.moreFragments && !p.isFragment);
  assert.deepEqual(parseIpv4(p), {
    src: SRC,
    dst: DST,
    protocol: IPPROTO_UDP,
    ttl: 64,
    payloadLength: 8,
    identification: 0,
    dontFragment: true,
  });
  const n = emitIpv4({
    src: SRC,
    dst: DST,
    protocol: IPPROTO_TCP,
    ttl: 1,
    payloadLength: 0,
    identification: 0xbeef,
    dontFragment: false,
  }, buf);
  assert.equal(n, 20);
  const q = Ipv4Packet.view(buf)!;
  assert.equal(q.identification, 0xbeef);
  assert.equal(q.dontFragment, false);
  assert.ok(q.verifyChecksum());
});

Deno.test("emitIpv4() throws RangeError for a buffer shorter than 20 bytes", () => {
  assert.throws(
    () =>
      emitIpv4({ src: SRC, dst: DST, protocol: 6, ttl: 64, payloadLength: 0 }, new Uint8Array(19)),
    RangeError,
  );
});

Deno.test("Ipv4Packet.view() covers totalLength bytes and reuses an exact buffer", () => {
  const exact = packet();
  assert.equal(Ipv4Packet.view(exact)!.bytes, exact);
  const padded = packet(8, 6);
  const p = Ipv4Packet.view(padded)!;
  assert.equal(p.bytes.length, 28);
  assert.equal(p.payload.length, 8);
  assert.equal(p.bytes.buffer, padded.buffer);
});

Deno.test("Ipv4Packet src/dst are live subarrays and setters write in place", () => {
  const buf = packet();
  const p = Ipv4Packet.view(buf)!;
  const newSrc = parseAddress("192.168.1.1")!;
  const check = adjust(p.checksum, p.src, newSrc);
  p.src.set(newSrc);
  assert.deepEqual(buf.subarray(12, 16), newSrc);
  p.checksum = check;
  assert.ok(p.verifyChecksum());
  p.ttl = 3;
  assert.equal(buf[8], 3);
  assert.ok(!p.verifyChecksum());
  p.fillChecksum();
  assert.ok(p.verifyChecksum());
  p.dst[3] = 99;
  assert.equal(buf[19], 99);
});

Deno.test("parseIpv4() copies the addresses", () => {
  const buf = packet();
  const r = parseIpv4(Ipv4Packet.view(buf)!);
  r.src[0] = 1;
  assert.equal(buf[12], 10);
});

Deno.test("Ipv4Packet reads fragment fields, DSCP and ECN", () => {
  const buf = packet(16);
  const p = Ipv4Packet.view(buf)!;
  buf[6] = 0x20 | 0x01; // MF, offset high bits 1
  buf[7] = 0x02; // offset 0x102 = 258 units
  buf[1] = (46 << 2) | 1; // EF, ECT(1)
  assert.ok(p.moreFragments && !p.dontFragment && p.isFragment);
  assert.equal(p.fragmentOffset, 258 * 8);
  assert.equal(p.dscp, 46);
  assert.equal(p.ecn, 1);
  buf[6] = 0x00;
  buf[7] = 0x01;
  assert.ok(p.isFragment && !p.moreFragments);
  buf[6] = 0x40;
  buf[7] = 0x00;
  assert.ok(!p.isFragment);
});
