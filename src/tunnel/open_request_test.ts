import assert from "node:assert/strict";
import { ProtocolError } from "./errors.ts";
import { memoryPipe } from "../io/pipe.ts";
import { readOpenReply, readOpenRequest, writeOpenReply, writeOpenRequest } from "./open.ts";
import {
  decodeOpenReply,
  decodeOpenRequest,
  encodeOpenReply,
  encodeOpenRequest,
  type OpenReply,
  type OpenRequest,
} from "./open_request.ts";

const requests: OpenRequest[] = [
  { kind: "tcp", host: "10.96.0.1", port: 443, timeoutMs: 5000 },
  { kind: "tcp", host: "web.default.svc.cluster.local", port: 1, timeoutMs: 0 },
  { kind: "tcp", host: "fd00::1", port: 65535, timeoutMs: 0xffffffff },
  { kind: "udp", host: "10.96.0.10", port: 53 },
  { kind: "udp", host: "ünïcödé.example", port: 9 },
  { kind: "dns" },
  { kind: "control" },
];

Deno.test("encodeOpenRequest() and decodeOpenRequest() round-trip", () => {
  for (const r of requests) {
    const b = encodeOpenRequest(r);
    assert.deepEqual(decodeOpenRequest(b), { request: r, consumed: b.length });
    // Trailing bytes (the stream's payload) are not consumed.
    const more = new Uint8Array([...b, 1, 2, 3]);
    assert.deepEqual(decodeOpenRequest(more), { request: r, consumed: b.length });
    // Every proper prefix is incomplete.
    for (let i = 0; i < b.length; i++) assert.equal(decodeOpenRequest(b.subarray(0, i)), null);
  }
});

/** ASCII text as byte values (for the literal vectors below). */
const ascii = (t: string) => Array.from(t, (c) => c.charCodeAt(0));

// Byte vectors written by hand from the format in open_request.ts's module comment (version u8,
// kind u8, body length u16, body; tcp body: port u16, timeoutMs u32, host length u8, host;
// udp body: port u16, host length u8, host; all big-endian), not produced by the encoder.
const requestVectors: [OpenRequest, number[]][] = [
  [
    { kind: "tcp", host: "10.96.0.1", port: 443, timeoutMs: 5000 },
    // v1, tcp, body 16 | port 0x01bb | timeout 0x00001388 | host length 9 | "10.96.0.1"
    [1, 1, 0, 16, 0x01, 0xbb, 0x00, 0x00, 0x13, 0x88, 9, ...ascii("10.96.0.1")],
  ],
  [
    // Every byte of port and timeout distinct, so any byte-order slip shows.
    { kind: "tcp", host: "a", port: 0x1234, timeoutMs: 0x0a0b0c0d },
    [1, 1, 0, 8, 0x12, 0x34, 0x0a, 0x0b, 0x0c, 0x0d, 1, 0x61],
  ],
  [
    { kind: "udp", host: "10.96.0.10", port: 53 },
    // v1, udp, body 13 | port 0x0035 | host length 10 | "10.96.0.10"
    [1, 2, 0, 13, 0x00, 0x35, 10, ...ascii("10.96.0.10")],
  ],
  [{ kind: "dns" }, [1, 3, 0, 0]],
  [{ kind: "control" }, [1, 4, 0, 0]],
];

// Replies: version u8, status u8, message length u16, message. Status codes are the order of
// the OpenStatus list in open_request.ts: ok 0, refused 1, unreachable 2, timeout 3,
// forbidden 4, error 5.
const replyVectors: [OpenReply, number[]][] = [
  [{ status: "ok" }, [1, 0, 0, 0]],
  [{ status: "refused", message: "nope" }, [1, 1, 0, 4, ...ascii("nope")]],
  [{ status: "unreachable", message: "ü" }, [1, 2, 0, 2, 0xc3, 0xbc]], // U+00FC in UTF-8
  [{ status: "timeout" }, [1, 3, 0, 0]],
  [{ status: "forbidden", message: "x" }, [1, 4, 0, 1, 0x78]],
  // 300 = 0x012c: the length's high byte comes first.
  [{ status: "error", message: "y".repeat(300) }, [1, 5, 0x01, 0x2c, ...ascii("y".repeat(300))]],
];

Deno.test("open requests and replies have the documented byte layout", () => {
  for (const [r, bytes] of requestVectors) {
    assert.deepEqual([...encodeOpenRequest(r)], bytes, `encode ${JSON.stringify(r)}`);
    assert.deepEqual(
      decodeOpenRequest(new Uint8Array(bytes)),
      { request: r, consumed: bytes.length },
      `decode ${JSON.stringify(r)}`,
    );
  }
  for (const [r, bytes] of replyVectors) {
    assert.deepEqual([...encodeOpenReply(r)], bytes, `encode ${r.status}`);
    assert.deepEqual(
      decodeOpenReply(new Uint8Array(bytes)),
      { reply: r, consumed: bytes.length },
      `decode ${r.status}`,
    );
  }
});

Deno.test("encodeOpenRequest() rejects out-of-range fields with RangeError", () => {
  const bad = [
    { kind: "tcp", host: "h", port: 0, timeoutMs: 1 },
    { kind: "tcp", host: "h", port: 65536, timeoutMs: 1 },
    { kind: "tcp", host: "h", port: 80, timeoutMs: -1 },
    { kind: "tcp", host: "", port: 80, timeoutMs: 1 },
    { kind: "udp", host: "x".repeat(256), port: 80 },
    { kind: "nope" },
  ];
  for (const r of bad) assert.throws(() => encodeOpenRequest(r as OpenRequest), RangeError);
});

Deno.test("decodeOpenRequest() throws ProtocolError on malformed input", () => {
  const tcp = encodeOpenRequest({ kind: "tcp", host: "abc", port: 80, timeoutMs: 1 });
  const cases: [string, number[], RegExp][] = [
    ["version", [2, 1, 0, 0], /unsupported version 2/],
    ["kind 0", [1, 0, 0, 0], /unknown kind 0/],
    ["kind 9", [1, 9, 0, 0], /unknown kind 9/],
    ["huge body", [1, 1, 0xff, 0xff], /exceeds 1024/],
    ["dns with body", [1, 3, 0, 1, 0], /dns request with a 1-byte body/],
    ["tcp short body", [1, 1, 0, 3, 0, 80, 0], /tcp body truncated/],
    [
      "host length past body",
      [...tcp.subarray(0, 3), tcp[3] - 1, ...tcp.subarray(4, -1)],
      /expected/,
    ],
    ["host length short of body", [1, 2, 0, 5, 0, 53, 1, 97, 98], /expected 4/],
    ["empty host", [1, 2, 0, 3, 0, 53, 0], /empty host/],
    ["port 0", [1, 2, 0, 4, 0, 0, 1, 97], /port 0/],
    ["bad utf-8", [1, 2, 0, 4, 0, 53, 1, 0xff], /invalid UTF-8/],
  ];
  for (const [name, bytes, re] of cases) {
    assert.throws(
      () => decodeOpenRequest(new Uint8Array(bytes)),
      (e) => e instanceof ProtocolError && re.test(e.message),
      name,
    );
  }
  // A bad version is reported from the first byte, before the rest arrives.
  assert.throws(() => decodeOpenRequest(new Uint8Array([7])), ProtocolError);
});

Deno.test("encodeOpenReply() and decodeOpenReply() round-trip and cut long messages", () => {
  const replies: OpenReply[] = [
    { status: "ok" },
    { status: "refused", message: "connect 10.0.0.1:81: connection refused" },
    { status: "unreachable", message: "no route" },
    { status: "timeout" },
    { status: "forbidden", message: "policy" },
    { status: "error", message: "ümlaut" },
  ];
  for (const r of replies) {
    const b = encodeOpenReply(r);
    assert.deepEqual(decodeOpenReply(b), { reply: r, consumed: b.length });
    for (let i = 0; i < b.length; i++) assert.equal(decodeOpenReply(b.subarray(0, i)), null);
  }
  const long = encodeOpenReply({ status: "error", message: "é".repeat(600) });
  const d = decodeOpenReply(long)!;
  assert.equal(d.reply.message, "é".repeat(512));
  assert.throws(() => decodeOpenReply(new Uint8Array([1, 6, 0, 0])), /unknown status 6/);
  assert.throws(() => decodeOpenReply(new Uint8Array([0, 0, 0, 0])), /unsupported version 0/);
  assert.throws(() => encodeOpenReply({ status: "maybe" as "ok" }), RangeError);
});

Deno.test("readOpenRequest() reads exactly the request and leaves the payload", async () => {
  const [a, b] = memoryPipe();
  const r: OpenRequest = { kind: "tcp", host: "10.1.2.3", port: 8080, timeoutMs: 3000 };
  // Request and payload in one write, as an opener sending data at once would.
  const req = encodeOpenRequest(r);
  await a.write(new Uint8Array([...req, 0xca, 0xfe]));
  assert.deepEqual(await readOpenRequest(b), r);
  const rest = new Uint8Array(4);
  assert.equal(await b.read(rest), 2);
  assert.deepEqual([...rest.subarray(0, 2)], [0xca, 0xfe]);
  await writeOpenReply(b, { status: "refused", message: "nope" });
  await b.write(new Uint8Array([9]));
  assert.deepEqual(await readOpenReply(a), { status: "refused", message: "nope" });
  assert.equal(await a.read(rest), 1);
  await writeOpenRequest(a, { kind: "control" });
  assert.deepEqual(await readOpenRequest(b), { kind: "control" });
  a.close();
  b.close();
});

Deno.test("readOpenRequest() throws ProtocolError when the stream ends early", async () => {
  const [a, b] = memoryPipe();
  const req = encodeOpenRequest({ kind: "udp", host: "abc", port: 53 });
  await a.write(req.subarray(0, req.length - 1));
  await a.closeWrite();
  await assert.rejects(
    readOpenRequest(b),
    (e) => e instanceof ProtocolError && /ended after/.test(e.message),
  );
  const [c, d] = memoryPipe();
  c.close();
  await assert.rejects(readOpenReply(d), ProtocolError);
  a.close();
  b.close();
  d.close();
});
