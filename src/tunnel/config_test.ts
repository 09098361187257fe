import assert from "node:assert/strict";
import { DEFAULT_SESSION_OPTIONS, resolveSessionOptions } from "./config.ts";

Deno.test("resolveSessionOptions() fills defaults", () => {
  assert.deepEqual(resolveSessionOptions({ client: false }), {
    ...DEFAULT_SESSION_OPTIONS,
    client: false,
  });
  assert.equal(resolveSessionOptions({ client: true, maxStreams: 5 }).maxStreams, 5);
  assert.equal(resolveSessionOptions({ client: true, maxStreams: undefined }).maxStreams, 4096);
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
