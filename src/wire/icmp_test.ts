import assert from "node:assert/strict";
import { parseAddress } from "./address.ts";
import { checksum, pseudoHeaderSum } from "./checksum.ts";
import {
  emitIcmpEcho,
  emitIcmpQuoting,
  icmpChecksumVerifies,
  parseIcmpEcho,
  storeIcmpChecksum,
} from "./icmp.ts";
import {
  emitIcmpv4Echo,
  emitIcmpv4Unreachable,
  ICMPV4_DEST_UNREACHABLE,
  ICMPV4_ECHO_REPLY,
  ICMPV4_ECHO_REQUEST,
  ICMPV4_ERROR_BODY_MAX,
  ICMPV4_UNREACH_ADMIN_PROHIBITED,
  ICMPV4_UNREACH_HOST,
  ICMPV4_UNREACH_NET,
  ICMPV4_UNREACH_PORT,
  ICMPV4_UNREACH_PROTOCOL,
  Icmpv4Message,
  parseIcmpv4Echo,
} from "./icmpv4.ts";
import {
  emitIcmpv6Echo,
  emitIcmpv6Unreachable,
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_ERROR_BODY_MAX,
  ICMPV6_UNREACH_ADDRESS,
  ICMPV6_UNREACH_ADMIN_PROHIBITED,
  ICMPV6_UNREACH_NO_ROUTE,
  ICMPV6_UNREACH_PORT,
  Icmpv6Message,
  parseIcmpv6Echo,
} from "./icmpv6.ts";

const SRC6 = parseAddress("fd00::1")!;
const DST6 = parseAddress("fd00::2")!;

Deno.test("ICMP constants have their RFC 792 / RFC 4443 values", () => {
  assert.deepEqual([ICMPV4_ECHO_REPLY, ICMPV4_DEST_UNREACHABLE, ICMPV4_ECHO_REQUEST], [0, 3, 8]);
  assert.deepEqual(
    [
      ICMPV4_UNREACH_NET,
      ICMPV4_UNREACH_HOST,
      ICMPV4_UNREACH_PROTOCOL,
      ICMPV4_UNREACH_PORT,
      ICMPV4_UNREACH_ADMIN_PROHIBITED,
    ],
    [0, 1, 2, 3, 13],
  );
  assert.deepEqual([ICMPV6_DEST_UNREACHABLE, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY], [
    1,
    128,
    129,
  ]);
  assert.deepEqual(
    [
      ICMPV6_UNREACH_NO_ROUTE,
      ICMPV6_UNREACH_ADMIN_PROHIBITED,
      ICMPV6_UNREACH_ADDRESS,
      ICMPV6_UNREACH_PORT,
    ],
    [0, 1, 3, 4],
  );
  assert.equal(ICMPV4_ERROR_BODY_MAX, 576 - 20 - 8);
  assert.equal(ICMPV6_ERROR_BODY_MAX, 1280 - 40 - 8);
});

Deno.test("emitIcmpv4Echo() and parseIcmpv4Echo() round-trip", () => {
  for (const reply of [false, true]) {
    const payload = new Uint8Array([1, 2, 3, 4, 5]);
    const buf = new Uint8Array(20);
    const n = emitIcmpv4Echo({ reply, identifier: 0xbeef, sequence: 0xffff, payload }, buf);
    assert.equal(n, 13);
    const m = Icmpv4Message.view(buf.subarray(0, n))!;
    assert.equal(m.type, reply ? 0 : 8);
    assert.equal(m.code, 0);
    assert.ok(m.verifyChecksum());
    assert.deepEqual(parseIcmpv4Echo(m), { reply, identifier: 0xbeef, sequence: 0xffff, payload });
    m.identifier = 1;
    assert.ok(!m.verifyChecksum());
    m.fillChecksum();
    assert.ok(m.verifyChecksum());
  }
  assert.throws(
    () =>
      emitIcmpv4Echo(
        { reply: true, identifier: 0, sequence: 0, payload: new Uint8Array(1) },
        new Uint8Array(8),
      ),
    RangeError,
  );
});

Deno.test("emitIcmpv4Unreachable() quotes at most 548 bytes and no more than fits", () => {
  const invoking = new Uint8Array(1500).map((_, i) => i);
  const cases: [number, number, number][] = [
    // [invoking length, buffer length, expected message length]
    [28, 1500, 36],
    [548, 1500, 556],
    [549, 1500, 556],
    [1500, 1500, 556],
    [1500, 100, 100],
    [0, 8, 8],
  ];
  for (const [len, bufLen, expected] of cases) {
    const buf = new Uint8Array(bufLen);
    const n = emitIcmpv4Unreachable(ICMPV4_UNREACH_PORT, invoking.subarray(0, len), buf);
    assert.equal(n, expected, `${len} into ${bufLen}`);
    const m = Icmpv4Message.view(buf.subarray(0, n))!;
    assert.equal(m.type, ICMPV4_DEST_UNREACHABLE);
    assert.equal(m.code, ICMPV4_UNREACH_PORT);
    assert.deepEqual(Array.from(m.bytes.subarray(4, 8)), [0, 0, 0, 0]);
    assert.deepEqual(m.body, invoking.subarray(0, n - 8));
    assert.ok(m.verifyChecksum());
    assert.equal(parseIcmpv4Echo(m), null);
  }
  assert.throws(() => emitIcmpv4Unreachable(3, invoking, new Uint8Array(7)), RangeError);
});

Deno.test("emitIcmpv6Echo() and parseIcmpv6Echo() round-trip with the pseudo-header", () => {
  for (const reply of [false, true]) {
    const payload = new Uint8Array([9, 8, 7]);
    const buf = new Uint8Array(11);
    const n = emitIcmpv6Echo({ reply, identifier: 1, sequence: 2, payload }, buf, SRC6, DST6);
    assert.equal(n, 11);
    const m = Icmpv6Message.view(buf)!;
    assert.equal(m.type, reply ? 129 : 128);
    assert.ok(m.verifyChecksum(SRC6, DST6));
    assert.ok(!m.verifyChecksum(DST6, DST6));
    assert.deepEqual(parseIcmpv6Echo(m), { reply, identifier: 1, sequence: 2, payload });
    m.identifier = 77;
    m.fillChecksum(SRC6, DST6);
    assert.ok(m.verifyChecksum(SRC6, DST6));
  }
});

Deno.test("emitIcmpv6Unreachable() quotes at most 1232 bytes and no more than fits", () => {
  const invoking = new Uint8Array(2000).map((_, i) => i * 3);
  const cases: [number, number, number][] = [
    [48, 1500, 56],
    [1232, 1500, 1240],
    [1233, 1500, 1240],
    [2000, 1280, 1240],
    [2000, 200, 200],
  ];
  for (const [len, bufLen, expected] of cases) {
    const buf = new Uint8Array(bufLen);
    const n = emitIcmpv6Unreachable(
      ICMPV6_UNREACH_ADMIN_PROHIBITED,
      invoking.subarray(0, len),
      buf,
      SRC6,
      DST6,
    );
    assert.equal(n, expected, `${len} into ${bufLen}`);
    const m = Icmpv6Message.view(buf.subarray(0, n))!;
    assert.equal(m.type, ICMPV6_DEST_UNREACHABLE);
    assert.equal(m.code, ICMPV6_UNREACH_ADMIN_PROHIBITED);
    assert.deepEqual(m.body, invoking.subarray(0, n - 8));
    assert.ok(m.verifyChecksum(SRC6, DST6));
    assert.equal(parseIcmpv6Echo(m), null);
  }
});

Deno.test("icmp.ts: the shared emitters, parser and checksum helpers", () => {
  const v4 = { request: 8, reply: 0 };
  const v6 = { request: 128, reply: 129 };
  // The quoting layout: type, code, zero checksum, four zero bytes, then the quote, cut at
  // quoteMax or at the end of the buffer, whichever comes first.
  const invoking = new Uint8Array(300).map((_, i) => i + 1);
  const buf = new Uint8Array(200).fill(0xee);
  let m = emitIcmpQuoting(1, 4, invoking, 100, buf, "ICMPv6");
  assert.equal(m.length, 108);
  assert.deepEqual(Array.from(m.subarray(0, 8)), [1, 4, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(m.subarray(8), invoking.subarray(0, 100));
  m = emitIcmpQuoting(3, 13, invoking, 548, buf, "ICMPv4");
  assert.equal(m.length, 200);
  assert.throws(
    () => emitIcmpQuoting(3, 3, invoking, 548, new Uint8Array(7), "ICMPv4"),
    (e: Error) => e instanceof RangeError && e.message.includes("ICMPv4 error"),
  );
  assert.throws(
    () =>
      emitIcmpEcho(
        { reply: false, identifier: 1, sequence: 1, payload: new Uint8Array(9) },
        v6,
        new Uint8Array(16),
        "ICMPv6",
      ),
    (e: Error) => e instanceof RangeError && e.message.includes("ICMPv6 echo: needs 17 bytes"),
  );
  // The echo parser takes the family's types: one family's echo is not the other's.
  const echo = emitIcmpEcho(
    { reply: true, identifier: 5, sequence: 6, payload: new Uint8Array([1]) },
    v6,
    new Uint8Array(9),
    "ICMPv6",
  );
  const view = Icmpv6Message.view(echo)!;
  assert.deepEqual(parseIcmpEcho(view, v6), {
    reply: true,
    identifier: 5,
    sequence: 6,
    payload: new Uint8Array([1]),
  });
  assert.equal(parseIcmpEcho(view, v4), null);
  echo[1] = 1;
  assert.equal(parseIcmpEcho(view, v6), null, "echo with a nonzero code");
  // storeIcmpChecksum() ignores whatever the checksum field held; icmpChecksumVerifies()
  // agrees with checksum() === 0, with and without a pseudo-header sum.
  let seed = 7;
  for (let i = 0; i < 200; i++) {
    const bytes = new Uint8Array(8 + (i % 40)).map(() =>
      (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24
    );
    const initial = i % 2 === 0 ? 0 : pseudoHeaderSum(SRC6, DST6, 58, bytes.length);
    assert.equal(icmpChecksumVerifies(bytes, initial), checksum(bytes, initial) === 0);
    storeIcmpChecksum(bytes, initial);
    assert.ok(icmpChecksumVerifies(bytes, initial));
    assert.equal(checksum(bytes, initial), 0);
  }
});
