import assert from "node:assert/strict";
import { DEFAULT_SESSION_OPTIONS, resolveSessionOptions } from "./config.ts";

Deno.test("resolveSessionOptions() fills defaults", () => {
  // The defaults the option docs state, written out.
  assert.deepEqual(resolveSessionOptions({ client: false }), {
    client: false,
    initialWindow: 256 * 1024, // the yamux spec's initial window
    maxWindow: 32 * 1024 * 1024,
    maxStreams: 8192,
    maxFrameSize: 1024 * 1024,
    acceptBacklog: 256,
    keepaliveIntervalMs: 0,
    keepaliveTimeoutMs: 10_000,
    writeTimeoutMs: 30_000,
    resumable: false, // plain yamux unless both ends agreed on resumption
    retainLimit: 16 * 1024 * 1024,
  });
  assert.deepEqual(resolveSessionOptions({ client: true }), {
    ...DEFAULT_SESSION_OPTIONS,
    client: true,
  });
  assert.equal(resolveSessionOptions({ client: true, maxStreams: 5 }).maxStreams, 5);
  assert.equal(resolveSessionOptions({ client: true, maxStreams: undefined }).maxStreams, 8192);
});

Deno.test("resolveSessionOptions() rejects bad values with RangeError naming the field", () => {
  const bad = [
    { initialWindow: 1000 },
    { maxWindow: 100 },
    { maxStreams: 0 },
    { keepaliveIntervalMs: -1 },
    { writeTimeoutMs: 1.5 },
  ];
  for (const o of bad) {
    const name = Object.keys(o)[0];
    assert.throws(() => resolveSessionOptions({ client: true, ...o }), new RegExp(name));
  }
});
