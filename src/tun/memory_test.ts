import assert from "node:assert/strict";
import { MemoryTun } from "./memory.ts";

function packet(length: number, fill: number): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

function buffers(count: number, size = 1600): Uint8Array[] {
  return Array.from({ length: count }, () => new Uint8Array(size));
}

Deno.test("MemoryTun.read() returns injected packets in order, at the offset, in batches", async () => {
  const tun = new MemoryTun();
  for (let i = 1; i <= 5; i++) assert(tun.inject(packet(i * 10, i)));
  const bufs = buffers(3);
  const sizes = [0, 0, 0];
  assert.deepStrictEqual(await tun.read(bufs, sizes, 16), 3);
  assert.deepStrictEqual(sizes, [10, 20, 30]);
  assert.deepStrictEqual(bufs[1].subarray(16, 36), packet(20, 2));
  assert.deepStrictEqual(bufs[1][15], 0);
  assert.deepStrictEqual(await tun.read(bufs, sizes, 0), 2);
  assert.deepStrictEqual(sizes.slice(0, 2), [40, 50]);
  assert.deepStrictEqual(tun.stats.readPackets, 5);
  assert.deepStrictEqual(tun.stats.readBytes, 150);
});

Deno.test("MemoryTun.read() waits for inject() and copies the packet", async () => {
  const tun = new MemoryTun();
  const bufs = buffers(4);
  const sizes = [0, 0, 0, 0];
  const pending = tun.read(bufs, sizes, 0);
  const original = packet(60, 7);
  tun.inject(original);
  original.fill(0); // the device kept its own copy
  assert.deepStrictEqual(await pending, 1);
  assert.deepStrictEqual(bufs[0].subarray(0, 60), packet(60, 7));
});

Deno.test("MemoryTun.close() makes a pending read resolve 0, and later reads too", async () => {
  const tun = new MemoryTun();
  const pending = tun.read(buffers(1), [0], 0);
  await tun.close();
  assert.deepStrictEqual(await pending, 0);
  assert.deepStrictEqual(await tun.read(buffers(1), [0], 0), 0);
  await tun.close(); // twice is harmless
  assert(tun.closed);
});

Deno.test("MemoryTun.inject() drops beyond readCapacity and after close", async () => {
  const tun = new MemoryTun({ readCapacity: 2 });
  assert(tun.inject(packet(20, 1)));
  assert(tun.inject(packet(20, 2)));
  assert(!tun.inject(packet(20, 3)));
  assert.deepStrictEqual(tun.injectDrops, 1);
  assert.deepStrictEqual(tun.pending, 2);
  await tun.close();
  assert(!tun.inject(packet(20, 4)));
  assert.deepStrictEqual(tun.injectDrops, 2);
});

Deno.test("MemoryTun.inject() and read() refuse oversize packets and small buffers", async () => {
  const tun = new MemoryTun({ mtu: 100 });
  assert.throws(() => tun.inject(packet(101, 1)), RangeError);
  tun.inject(packet(100, 1));
  await assert.rejects(tun.read([new Uint8Array(100)], [0], 4), RangeError);
  assert.deepStrictEqual(await tun.read([new Uint8Array(104)], [0], 4), 1);
});

Deno.test("MemoryTun.write() copies packets from the offset into written and onWrite", () => {
  const tun = new MemoryTun();
  const seen: Uint8Array[] = [];
  tun.onWrite = (p) => seen.push(p);
  const a = new Uint8Array([9, 9, 1, 2, 3]);
  const b = new Uint8Array([9, 9, 4]);
  assert.deepStrictEqual(tun.write([a, b], 2), 2);
  a.fill(0);
  assert.deepStrictEqual(tun.written, [new Uint8Array([1, 2, 3]), new Uint8Array([4])]);
  assert.deepStrictEqual(seen, tun.written);
  assert.deepStrictEqual(tun.stats.writtenPackets, 2);
  assert.deepStrictEqual(tun.stats.writtenBytes, 4);
});

Deno.test("MemoryTun.write() drops beyond writeCapacity, over the MTU and after close", async () => {
  const tun = new MemoryTun({ mtu: 10, writeCapacity: 2 });
  assert.deepStrictEqual(
    tun.write([packet(5, 1), packet(11, 2), packet(5, 3), packet(5, 4)], 0),
    2,
  );
  assert.deepStrictEqual(tun.stats.writeErrors, 2);
  assert.deepStrictEqual((await tun.nextWrite())[0], 1); // makes room for one more
  assert.deepStrictEqual(tun.write([packet(5, 5)], 0), 1);
  await tun.close();
  assert.deepStrictEqual(tun.write([packet(5, 6)], 0), 0);
  assert.deepStrictEqual(tun.stats.writeErrors, 3);
});

Deno.test("MemoryTun.nextWrite() takes queued packets first, then waits", async () => {
  const tun = new MemoryTun();
  tun.write([packet(3, 1)], 0);
  assert.deepStrictEqual(await tun.nextWrite(), packet(3, 1));
  const waiting = tun.nextWrite();
  tun.write([packet(4, 2)], 0);
  assert.deepStrictEqual(await waiting, packet(4, 2));
  assert.deepStrictEqual(tun.written.length, 0); // a packet handed to a waiter is not also queued
});

Deno.test("MemoryTun.nextWrite() rejects when the device closes while waiting", async () => {
  const tun = new MemoryTun({ name: "memx" });
  const waiting = tun.nextWrite();
  await tun.close();
  await assert.rejects(waiting, /memx closed/);
  await assert.rejects(tun.nextWrite(), /closed/);
});

Deno.test("MemoryTun works with await using", async () => {
  let tun: MemoryTun;
  {
    await using t = new MemoryTun();
    tun = t;
  }
  assert(tun.closed);
});
