import assert from "node:assert/strict";
import { ALLOCATOR_SETTINGS, keepAllocatorPages, releaseAllocatorPages } from "./allocator.ts";

Deno.test("keepAllocatorPages() sets glibc's mmap threshold, trim threshold and top pad", () => {
  const calls: [number, number][] = [];
  assert.equal(keepAllocatorPages((p, v) => (calls.push([p, v]), 1)), true);
  assert.deepEqual(calls, [
    [-3, ALLOCATOR_SETTINGS.mmapThreshold],
    [-1, ALLOCATOR_SETTINGS.trimThreshold],
    [-2, ALLOCATOR_SETTINGS.topPad],
  ]);
  assert.equal(keepAllocatorPages(() => 0), false, "a refused setting is reported");
  assert.equal(keepAllocatorPages(null), false);
});

Deno.test({
  name: "keepAllocatorPages() takes effect with this machine's glibc",
  ignore: Deno.build.os !== "linux",
  fn: () => assert.equal(keepAllocatorPages(), true),
});

Deno.test("releaseAllocatorPages() calls malloc_trim(0) and reports whether memory went back", () => {
  const pads: bigint[] = [];
  assert.equal(releaseAllocatorPages((pad) => (pads.push(pad), 1)), true);
  assert.equal(releaseAllocatorPages((pad) => (pads.push(pad), 0)), false);
  assert.deepEqual(pads, [0n, 0n]);
  assert.equal(releaseAllocatorPages(null), false);
});
