import assert from "node:assert/strict";
import { Decoder } from "./decoder.ts";
import { ProtocolError } from "./errors.ts";
import { encodeFrame, Flag, FrameType } from "./frame.ts";
import { wholeFrames, YAMUX_CLIENT_VECTOR } from "./_test_util.ts";

const enc = new TextEncoder();

interface _Ref {
  type: number;
  flags: number;
  streamId: number;
  length: number;
  data: number[];
}

/** The slow, obvious decoder: whole buffer, one field at a time. */
function referenceDecode(bytes: Uint8Array): _Ref[] {
  const out: _Ref[] = [];
  let i = 0;
  const u = (n: number) => {
    let v = 0;
    for (let k = 0; k < n; k++) v = v * 256 + bytes[i++];
    return v;
  };
  while (i < bytes.length) {
    const version = u(1);
    const type = u(1);
    const flags = u(2);
    const streamId = u(4);
    const length = u(4);
    if (version !== 0 || type > 3) throw new Error("bad frame");
    const data: number[] = [];
    if (type === 0) { for (let k = 0; k < length; k++) data.push(bytes[i++]); }
    out.push({ type, flags, streamId, length, data });
  }
  return out;
}

function randomFrames(rand: () => number, count: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const kind = Math.floor(rand() * 4);
    const id = 1 + Math.floor(rand() * 1000);
    if (kind === 0) {
      const len = rand() < 0.2 ? 0 : Math.floor(rand() * (rand() < 0.1 ? 70000 : 300));
      const data = new Uint8Array(len);
      for (let k = 0; k < len; k++) data[k] = Math.floor(rand() * 256);
      parts.push(encodeFrame(FrameType.Data, rand() < 0.1 ? Flag.FIN : 0, id, data));
    } else if (kind === 1) {
      parts.push(encodeFrame(FrameType.WindowUpdate, Flag.SYN, id, Math.floor(rand() * 2 ** 32)));
    } else if (kind === 2) {
      parts.push(encodeFrame(FrameType.Ping, Flag.ACK, 0, Math.floor(rand() * 2 ** 32)));
    } else {
      parts.push(encodeFrame(FrameType.GoAway, 0, 0, 0));
    }
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  return all;
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("Decoder matches the reference decoder on random chunkings", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rand = mulberry32(seed);
    const bytes = randomFrames(rand, 60);
    const want = referenceDecode(bytes);
    const d = new Decoder();
    const carry = { frame: null };
    const got: _Ref[] = [];
    let off = 0;
    while (off < bytes.length) {
      const r = rand();
      const n = r < 0.3 ? 1 + Math.floor(rand() * 13) : Math.floor(rand() * 100000) + 1;
      // A fresh copy per chunk, then overwrite it after decoding: views must be consumed now.
      const chunk = bytes.slice(off, off + n);
      off += n;
      d.push(chunk);
      for (const f of wholeFrames(d, carry)) {
        const { type, flags, streamId, length } = f;
        got.push({ type, flags, streamId, length, data: [...f.data] });
      }
      chunk.fill(0xee);
    }
    assert.equal(d.bufferedBytes, 0);
    assert.deepEqual(got, want, `seed ${seed}`);
  }
});

Deno.test("Decoder reads frames as hashicorp/yamux writes them; encodeFrame() writes the same", () => {
  const expected: _Ref[] = [
    { type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 1, length: 0, data: [] },
    { type: FrameType.Data, flags: 0, streamId: 1, length: 5, data: [...enc.encode("hello")] },
    { type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 0x102, data: [] },
    { type: FrameType.WindowUpdate, flags: Flag.FIN, streamId: 1, length: 0, data: [] },
    { type: FrameType.GoAway, flags: 0, streamId: 0, length: 0, data: [] },
  ];
  const wire = YAMUX_CLIENT_VECTOR.flatMap((f) => f.bytes);
  // Whole, and one byte at a time.
  for (const chunk of [wire.length, 1]) {
    const d = new Decoder();
    const carry = { frame: null };
    const got: _Ref[] = [];
    for (let off = 0; off < wire.length; off += chunk) {
      d.push(new Uint8Array(wire.slice(off, off + chunk)));
      for (const f of wholeFrames(d, carry)) {
        const { type, flags, streamId, length } = f;
        got.push({ type, flags, streamId, length, data: [...f.data] });
      }
    }
    assert.deepEqual(got, expected, `chunks of ${chunk}`);
  }
  expected.forEach((f, i) => {
    const bytes = encodeFrame(
      f.type as FrameType,
      f.flags,
      f.streamId,
      f.type === FrameType.Data ? new Uint8Array(f.data) : f.length,
    );
    assert.deepEqual([...bytes], YAMUX_CLIENT_VECTOR[i].bytes, YAMUX_CLIENT_VECTOR[i].name);
  });
});

Deno.test("Decoder yields many frames from one chunk and views when whole", () => {
  const a = encodeFrame(FrameType.Data, 0, 1, new Uint8Array([1, 2]));
  const b = encodeFrame(FrameType.Ping, Flag.SYN, 0, 42);
  const both = new Uint8Array([...a, ...b]);
  const d = new Decoder();
  d.push(both);
  const fs = [...d];
  assert.equal(fs.length, 2);
  assert.equal(fs[0].owned, false);
  assert.deepEqual([...fs[0].data], [1, 2]);
  assert.equal(fs[1].type, FrameType.Ping);
  assert.equal(fs[1].length, 42);
});

const bad: [string, Uint8Array, RegExp][] = [
  ["bad version", new Uint8Array([1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), /unsupported version 1/],
  ["unknown type", new Uint8Array([0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), /unknown type 4/],
  ["unknown flag", encodeFrame(FrameType.Data, 0x10, 1, 0), /unknown flags/],
  ["SYN+ACK", encodeFrame(FrameType.WindowUpdate, Flag.SYN | Flag.ACK, 1, 0), /SYN and ACK/],
  ["data on stream 0", encodeFrame(FrameType.Data, 0, 0, new Uint8Array(1)), /on stream 0/],
  ["window update on 0", encodeFrame(FrameType.WindowUpdate, 0, 0, 5), /on stream 0/],
  ["ping on a stream", encodeFrame(FrameType.Ping, Flag.SYN, 3, 5), /ping on stream 3/],
  ["ping without SYN/ACK", encodeFrame(FrameType.Ping, 0, 0, 5), /ping with flags/],
  ["go-away with flags", encodeFrame(FrameType.GoAway, Flag.FIN, 0, 0), /go-away with flags/],
  ["go-away on stream", encodeFrame(FrameType.GoAway, 0, 1, 0), /go-away on stream 1/],
  [
    "oversized data",
    encodeFrame(FrameType.Data, 0, 1, 1024 * 1024 + 1),
    /1048577 bytes exceeds the maximum 1048576/,
  ],
];

for (const [name, bytes, re] of bad) {
  Deno.test(`Decoder rejects ${name} with ProtocolError`, () => {
    const d = new Decoder();
    // Split the header to check it is validated across chunks too.
    d.push(bytes.subarray(0, 5));
    assert.equal(d.next(), null);
    d.push(bytes.subarray(5, 12));
    assert.throws(() => d.next(), (e) => e instanceof ProtocolError && re.test(e.message));
    // Stays failed.
    assert.throws(() => d.next(), ProtocolError);
  });
}

Deno.test("Decoder honours maxFrameSize", () => {
  const d = new Decoder({ maxFrameSize: 10 });
  d.push(encodeFrame(FrameType.Data, 0, 1, new Uint8Array(10)));
  assert.equal(d.next()?.length, 10);
  d.push(encodeFrame(FrameType.Data, 0, 1, new Uint8Array(11)));
  assert.throws(() => d.next(), ProtocolError);
});

Deno.test("Decoder.push() refuses a chunk while the previous one is undecoded", () => {
  const d = new Decoder();
  d.push(encodeFrame(FrameType.Ping, Flag.SYN, 0, 1));
  assert.throws(() => d.push(new Uint8Array(1)), /not fully decoded/);
});

Deno.test("Decoder hands on a payload split over chunks piece by piece: SYN on the first piece, FIN on the last, no copy", () => {
  const payload = new Uint8Array(1000).map((_, i) => i % 253);
  const bytes = encodeFrame(FrameType.Data, Flag.SYN | Flag.FIN, 5, payload);
  const d = new Decoder();
  const pieces: { flags: number; length: number; partial?: boolean; view: boolean }[] = [];
  const data: number[] = [];
  for (const [from, to] of [[0, 12], [12, 400], [400, 401], [401, 1012]]) {
    const chunk = bytes.slice(from, to);
    d.push(chunk);
    for (const f of d) {
      assert.equal(f.streamId, 5);
      pieces.push({
        flags: f.flags,
        length: f.length,
        partial: f.partial,
        view: f.data.buffer === chunk.buffer,
      });
      data.push(...f.data);
    }
  }
  assert.deepEqual(pieces, [
    { flags: Flag.SYN, length: 388, partial: true, view: true },
    { flags: 0, length: 1, partial: true, view: true },
    { flags: Flag.FIN, length: 611, partial: false, view: true },
  ]);
  assert.deepEqual(data, [...payload]);
  assert.equal(d.bufferedBytes, 0);
});
