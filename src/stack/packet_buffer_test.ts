import assert from "node:assert/strict";
import { TUN_HEADROOM } from "../tun/device.ts";
import { allocPacket, copyPacket, withHeadroom } from "./packet_buffer.ts";

Deno.test("allocPacket() and copyPacket() leave TUN_HEADROOM bytes of their own in front", () => {
  const p = allocPacket(20);
  assert.equal(p.length, 20);
  assert.equal(p.byteOffset, TUN_HEADROOM);
  assert.equal(p.buffer.byteLength, TUN_HEADROOM + 20);
  const source = new Uint8Array([0x45, 1, 2, 3]);
  const c = copyPacket(source);
  assert.deepEqual(c, source);
  assert.equal(c.byteOffset, TUN_HEADROOM);
  source[1] = 9;
  assert.equal(c[1], 1, "a copy");
});

Deno.test("withHeadroom() widens the view over the same memory, or is null without room", () => {
  const p = copyPacket(new Uint8Array([0x45, 1, 2]));
  const frame = withHeadroom(p)!;
  assert.equal(frame.buffer, p.buffer);
  assert.equal(frame.length, TUN_HEADROOM + 3);
  assert.deepEqual(frame.subarray(TUN_HEADROOM), p);
  frame[TUN_HEADROOM] = 0x46;
  assert.equal(p[0], 0x46, "not a copy");
  const read = new Uint8Array(TUN_HEADROOM + 100);
  assert.equal(withHeadroom(read.subarray(TUN_HEADROOM, TUN_HEADROOM + 40))!.byteOffset, 0);
  assert.equal(withHeadroom(new Uint8Array(8)), null);
  assert.equal(withHeadroom(read.subarray(TUN_HEADROOM - 1)), null);
});
