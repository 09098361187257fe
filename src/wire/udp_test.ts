import assert from "node:assert/strict";
import { parseAddress } from "./address.ts";
import { emitUdp, UdpDatagram } from "./udp.ts";

const SRC4 = parseAddress("10.0.0.1")!;
const DST4 = parseAddress("10.96.0.10")!;
const SRC6 = parseAddress("fd00::1")!;
const DST6 = parseAddress("fd00::2")!;

Deno.test("emitUdp() writes ports, length, payload and a verifying checksum", () => {
  for (const [src, dst] of [[SRC4, DST4], [SRC6, DST6]]) {
    for (const size of [0, 1, 2, 7, 512, 1473]) {
      const payload = new Uint8Array(size).map((_, i) => i * 7);
      const buf = new Uint8Array(size + 10).fill(0xee);
      const n = emitUdp({ srcPort: 53, dstPort: 40000, payload }, buf, src, dst);
      assert.equal(n, 8 + size);
      assert.equal(buf[n], 0xee);
      const d = UdpDatagram.view(buf.subarray(0, n))!;
      assert.equal(d.srcPort, 53);
      assert.equal(d.dstPort, 40000);
      assert.equal(d.length, 8 + size);
      assert.deepEqual(d.payload, payload);
      assert.notEqual(d.checksum, 0);
      assert.ok(d.verifyChecksum(src, dst));
    }
  }
});

Deno.test("emitUdp() throws RangeError when the buffer is too short", () => {
  assert.throws(
    () =>
      emitUdp(
        { srcPort: 1, dstPort: 2, payload: new Uint8Array(3) },
        new Uint8Array(10),
        SRC4,
        DST4,
      ),
    RangeError,
  );
});

Deno.test("UdpDatagram.verifyChecksum() accepts 0 over IPv4 only", () => {
  const buf = new Uint8Array(12);
  emitUdp({ srcPort: 1, dstPort: 2, payload: new Uint8Array([1, 2, 3, 4]) }, buf, SRC4, DST4);
  const d = UdpDatagram.view(buf)!;
  d.checksum = 0;
  assert.ok(d.verifyChecksum(SRC4, DST4));
  assert.ok(!d.verifyChecksum(SRC6, DST6));
  d.checksum = 0x1234;
  assert.ok(!d.verifyChecksum(SRC4, DST4));
});

Deno.test("UdpDatagram.fillChecksum() stores a computed 0 as 0xffff, which verifies", () => {
  // Find a payload word that makes the checksum compute to 0.
  const buf = new Uint8Array(10);
  const d = UdpDatagram.view(
    (emitUdp({ srcPort: 7, dstPort: 9, payload: new Uint8Array(2) }, buf, SRC6, DST6), buf),
  )!;
  let found = false;
  for (let w = 0; w <= 0xffff && !found; w++) {
    buf[8] = w >> 8;
    buf[9] = w & 0xff;
    d.fillChecksum(SRC6, DST6);
    if (d.checksum === 0xffff) found = true;
    assert.notEqual(d.checksum, 0);
    assert.ok(d.verifyChecksum(SRC6, DST6));
  }
  assert.ok(found);
});

Deno.test("UdpDatagram setters write in place", () => {
  const buf = new Uint8Array(8);
  emitUdp({ srcPort: 1, dstPort: 2, payload: new Uint8Array() }, buf, SRC4, DST4);
  const d = UdpDatagram.view(buf)!;
  assert.equal(d.bytes, buf);
  d.srcPort = 0xabcd;
  d.dstPort = 0x1234;
  assert.deepEqual(Array.from(buf.subarray(0, 4)), [0xab, 0xcd, 0x12, 0x34]);
  d.fillChecksum(SRC4, DST4);
  assert.ok(d.verifyChecksum(SRC4, DST4));
});
