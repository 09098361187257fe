import assert from "node:assert/strict";
import { parseAddress } from "./address.ts";
import { emitIpv6, Ipv6Packet, parseIpv6 } from "./ipv6.ts";
import { IPPROTO_TCP } from "./protocol.ts";

const SRC = parseAddress("fd00:6b63::1")!;
const DST = parseAddress("fd00:6b63:0:1::a")!;

Deno.test("emitIpv6() writes traffic class, flow label and lengths; parseIpv6() reads them", () => {
  const cases = [
    { trafficClass: 0, flowLabel: 0 },
    { trafficClass: 0xff, flowLabel: 0xfffff },
    { trafficClass: 0xb8, flowLabel: 0x12345 },
    { trafficClass: 0x01, flowLabel: 0x80000 },
  ];
  for (const c of cases) {
    const buf = new Uint8Array(60);
    const repr = { src: SRC, dst: DST, nextHeader: IPPROTO_TCP, hopLimit: 255, payloadLength: 20 };
    assert.equal(emitIpv6({ ...repr, ...c }, buf), 40);
    assert.equal(buf[0] >> 4, 6);
    const p = Ipv6Packet.view(buf)!;
    assert.deepEqual(parseIpv6(p), { ...repr, ...c });
  }
  const buf = new Uint8Array(40);
  emitIpv6({ src: SRC, dst: DST, nextHeader: 59, hopLimit: 1, payloadLength: 0 }, buf);
  assert.deepEqual([buf[0], buf[1], buf[2], buf[3]], [0x60, 0, 0, 0]);
});

Deno.test("emitIpv6() throws RangeError for a buffer shorter than 40 bytes", () => {
  assert.throws(
    () =>
      emitIpv6(
        { src: SRC, dst: DST, nextHeader: 6, hopLimit: 64, payloadLength: 0 },
        new Uint8Array(39),
      ),
    RangeError,
  );
});

Deno.test("Ipv6Packet.view() covers 40 + payloadLength bytes; addresses are live", () => {
  const buf = new Uint8Array(40 + 20 + 8);
  emitIpv6({ src: SRC, dst: DST, nextHeader: IPPROTO_TCP, hopLimit: 64, payloadLength: 20 }, buf);
  const p = Ipv6Packet.view(buf)!;
  assert.equal(p.bytes.length, 60);
  assert.equal(p.payload.length, 20);
  p.hopLimit = 7;
  assert.equal(buf[7], 7);
  p.dst.set(SRC);
  assert.deepEqual(buf.subarray(24, 40), SRC);
  const r = parseIpv6(p);
  r.src[0] = 0;
  assert.equal(buf[8], 0xfd);
});

Deno.test("Ipv6Packet.upperLayer() returns the fixed header's protocol without extensions", () => {
  const buf = new Uint8Array(60);
  emitIpv6({ src: SRC, dst: DST, nextHeader: IPPROTO_TCP, hopLimit: 64, payloadLength: 20 }, buf);
  assert.deepEqual(Ipv6Packet.view(buf)!.upperLayer(), { protocol: IPPROTO_TCP, offset: 40 });
});
