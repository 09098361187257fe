import assert from "node:assert/strict";
import { parseAddress } from "./address.ts";
import {
  emitTcp,
  parseTcp,
  parseTcpOptions,
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  tcpHeaderLength,
  type TcpOptions,
  type TcpRepr,
  TcpSegment,
} from "./tcp.ts";

const SRC4 = parseAddress("10.0.0.1")!;
const DST4 = parseAddress("10.96.0.10")!;
const SRC6 = parseAddress("fd00::1")!;
const DST6 = parseAddress("fd00::2")!;

function repr(options?: TcpOptions, payload?: Uint8Array): TcpRepr {
  return {
    srcPort: 40000,
    dstPort: 80,
    seq: 1,
    ack: 0,
    flags: TCP_SYN,
    window: 64240,
    options,
    payload,
  };
}

Deno.test("TCP flag constants have their RFC values", () => {
  assert.deepEqual(
    [TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG, TCP_ECE, TCP_CWR],
    [1, 2, 4, 8, 16, 32, 64, 128],
  );
});

Deno.test("tcpHeaderLength() lays options out as Linux does", () => {
  const ts = { value: 1, echo: 2 };
  const cases: [TcpOptions | undefined, number][] = [
    [undefined, 20],
    [{}, 20],
    [{ mss: 1460 }, 24],
    [{ sackPermitted: true }, 24],
    [{ timestamp: ts }, 32],
    [{ sackPermitted: true, timestamp: ts }, 32],
    [{ windowScale: 7 }, 24],
    [{ mss: 1460, sackPermitted: true, timestamp: ts, windowScale: 7 }, 40],
    [{ mss: 1460, sackPermitted: true, windowScale: 7 }, 32],
    [{ sack: [] }, 20],
    [{ sack: [[1, 2]] }, 32],
    [{ sack: [[1, 2], [3, 4], [5, 6], [7, 8]] }, 56],
    [{ sack: [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]] }, 56], // at most 4 blocks
    [{ timestamp: ts, sack: [[1, 2], [3, 4], [5, 6], [7, 8]] }, 60], // only 3 fit
    [{ mss: 1, timestamp: ts, windowScale: 1, sack: [[1, 2], [3, 4], [5, 6]] }, 60], // 2 fit
  ];
  for (const [options, expected] of cases) {
    assert.equal(tcpHeaderLength(repr(options)), expected, JSON.stringify(options));
  }
});

Deno.test("emitTcp() then parseTcp() round-trips every option combination", () => {
  const all: TcpOptions = {
    mss: 1460,
    windowScale: 14,
    sackPermitted: true,
    timestamp: { value: 0xffffffff, echo: 0x80000000 },
    sack: [[0xfffffff0, 0x10]],
  };
  const keys = Object.keys(all) as (keyof TcpOptions)[];
  for (let mask = 0; mask < 1 << keys.length; mask++) {
    const options: TcpOptions = {};
    for (let k = 0; k < keys.length; k++) {
      // deno-lint-ignore no-explicit-any
      if (mask & (1 << k)) (options as any)[keys[k]] = all[keys[k]];
    }
    for (const [src, dst] of [[SRC4, DST4], [SRC6, DST6]]) {
      const payload = new Uint8Array([1, 2, 3, 4, 5]);
      const buf = new Uint8Array(100);
      const n = emitTcp(repr(options, payload), buf, src, dst);
      assert.equal(n, tcpHeaderLength(repr(options)) + 5);
      const s = TcpSegment.view(buf.subarray(0, n))!;
      assert.ok(s.verifyChecksum(src, dst));
      assert.equal(s.headerLength % 4, 0);
      const r = parseTcp(s)!;
      assert.deepEqual(r.options, options);
      assert.deepEqual(r.payload, payload);
    }
  }
});

Deno.test("emitTcp() writes every header field and only the segment's bytes", () => {
  const buf = new Uint8Array(40).fill(0xee);
  const n = emitTcp(
    {
      srcPort: 0xfffe,
      dstPort: 1,
      seq: 0xfedcba98,
      ack: 0x89abcdef,
      flags: TCP_ACK | TCP_PSH | TCP_URG,
      window: 0xabcd,
      urgentPointer: 0x1234,
      payload: new Uint8Array([9]),
    },
    buf,
    SRC4,
    DST4,
  );
  assert.equal(n, 21);
  assert.equal(buf[21], 0xee);
  const s = TcpSegment.view(buf.subarray(0, n))!;
  assert.equal(s.srcPort, 0xfffe);
  assert.equal(s.dstPort, 1);
  assert.equal(s.seq, 0xfedcba98);
  assert.equal(s.ack, 0x89abcdef);
  assert.equal(s.flags, TCP_ACK | TCP_PSH | TCP_URG);
  assert.ok(s.ackFlag && s.psh && !s.syn && !s.fin && !s.rst);
  assert.equal(s.window, 0xabcd);
  assert.equal(s.urgentPointer, 0x1234);
  assert.deepEqual(s.options, new Uint8Array(0));
  assert.ok(s.verifyChecksum(SRC4, DST4));
  assert.ok(!s.verifyChecksum(SRC4, SRC4));
});

Deno.test("emitTcp() throws RangeError when the buffer is too short", () => {
  assert.throws(() => emitTcp(repr({ mss: 1 }), new Uint8Array(23), SRC4, DST4), RangeError);
});

Deno.test("TcpSegment setters write in place; fillChecksum() repairs the checksum", () => {
  const buf = new Uint8Array(20);
  emitTcp(repr(), buf, SRC4, DST4);
  const s = TcpSegment.view(buf)!;
  assert.equal(s.bytes, buf);
  s.srcPort = 12345;
  s.dstPort = 443;
  s.seq = 2 ** 32 + 5;
  s.ack = -1;
  assert.equal(s.srcPort, 12345);
  assert.equal(s.dstPort, 443);
  assert.equal(s.seq, 5);
  assert.equal(s.ack, 0xffffffff);
  assert.ok(!s.verifyChecksum(SRC4, DST4));
  s.fillChecksum(SRC4, DST4);
  assert.ok(s.verifyChecksum(SRC4, DST4));
  s.checksum = 0x1234;
  assert.equal((buf[16] << 8) | buf[17], 0x1234);
});

Deno.test("parseTcpOptions() handles EOL, NOP, unknown kinds and repeated options", () => {
  const cases: [number[], TcpOptions][] = [
    [[], {}],
    [[0], {}],
    [[0, 2, 4, 5, 0xb4], {}], // nothing after EOL counts, even garbage
    [[1, 1, 1, 1], {}],
    [[2, 4, 0x05, 0xb4], { mss: 1460 }],
    [[30, 4, 0xff, 0xff, 3, 3, 14], { windowScale: 14 }],
    [[254, 2, 4, 2], { sackPermitted: true }],
    [[8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1], { timestamp: { value: 0xffffffff, echo: 1 } }],
    [[5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], {
      sack: [[1, 2], [0xffffffff, 0]],
    }],
    [[2, 4, 0, 1, 2, 4, 0, 2], { mss: 2 }], // the last one wins
  ];
  for (const [bytes, expected] of cases) {
    assert.deepEqual(parseTcpOptions(new Uint8Array(bytes)), expected, JSON.stringify(bytes));
  }
});
