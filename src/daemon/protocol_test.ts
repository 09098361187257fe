import assert from "node:assert/strict";
import { encodeLine, LineReader, parseRequest, PROTOCOL_VERSION } from "./protocol.ts";

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  const e = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(e.encode(ch));
      c.close();
    },
  });
}

Deno.test("LineReader.next() splits chunks into lines, whatever the chunk boundaries", async () => {
  const r = new LineReader(streamOf('{"a":', '1}\n{"b"', ":2}\n", "tail"));
  assert.equal(await r.next(), '{"a":1}');
  assert.equal(await r.next(), '{"b":2}');
  assert.equal(await r.next(), "tail");
  assert.equal(await r.next(), null);
});

Deno.test("LineReader.next() refuses a line longer than the limit", async () => {
  const r = new LineReader(streamOf("x".repeat(100)), 10);
  await assert.rejects(() => r.next(), RangeError);
});

Deno.test("encodeLine() and parseRequest() round-trip an up request", () => {
  const req = {
    v: PROTOCOL_VERSION,
    auth: "ab",
    type: "up",
    kubeconfig: "/home/u/.kube/config",
    context: null,
    env: { HOME: "/home/u" },
    cwd: "/home/u",
    switch: true,
    flags: { transports: 3 },
    config: null,
  };
  const line = new TextDecoder().decode(encodeLine(req)).trimEnd();
  assert.deepEqual(parseRequest(line), req);
});

Deno.test("parseRequest() names what is wrong", () => {
  const cases: [string, RegExp][] = [
    ["nope", /not JSON/],
    ["[]", /protocol version|not a JSON object/],
    ['{"v":2,"auth":"a","type":"status"}', /protocol version 2, this daemon speaks 1/],
    ['{"v":1,"type":"status"}', /"auth" must be a string/],
    ['{"v":1,"auth":"a","type":"reboot"}', /unknown request type "reboot"/],
    [
      '{"v":1,"auth":"a","type":"up","env":{"A":1},"cwd":"/","flags":{}}',
      /env\.A must be a string/,
    ],
    ['{"v":1,"auth":"a","type":"up","env":{},"flags":{}}', /"cwd" must be a string/],
  ];
  for (const [line, re] of cases) assert.throws(() => parseRequest(line), re, line);
});
