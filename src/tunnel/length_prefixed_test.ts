import assert from "node:assert/strict";
import { ProtocolError } from "./errors.ts";
import { FrameReader, writeAll, writeU16Frame, writeU32Frame } from "./length_prefixed.ts";
import { memoryPipe } from "../io/pipe.ts";

Deno.test("FrameReader reads u16 and u32 frames split and packed arbitrarily", async () => {
  const [a, b] = memoryPipe();
  const msgs = [new Uint8Array(0), new Uint8Array([1]), new Uint8Array(65535).fill(7)];
  const writing = (async () => {
    for (const m of msgs) await writeU16Frame(a, m);
    await writeU32Frame(a, new TextEncoder().encode('{"hello":1}'));
    // One byte at a time too.
    const one = new Uint8Array([0, 3, 4, 5, 6]);
    for (const x of one) await a.write(new Uint8Array([x]));
    await a.closeWrite();
  })();
  const r = new FrameReader(b, { bufferSize: 1000 });
  for (const m of msgs) assert.deepEqual(await r.readU16Frame(), m);
  assert.equal(new TextDecoder().decode((await r.readU32Frame(100))!), '{"hello":1}');
  assert.deepEqual(await r.readU16Frame(), new Uint8Array([4, 5, 6]));
  assert.equal(await r.readU16Frame(), null);
  await writing;
  b.close();
});

Deno.test("FrameReader throws ProtocolError on truncated or oversized frames", async () => {
  const [a, b] = memoryPipe();
  await a.write(new Uint8Array([0, 0, 0, 200]));
  const r = new FrameReader(b);
  await assert.rejects(r.readU32Frame(100), /200 bytes exceed 100/);
  const [c, d] = memoryPipe();
  await c.write(new Uint8Array([0, 5, 1, 2]));
  await c.closeWrite();
  await assert.rejects(new FrameReader(d).readU16Frame(), ProtocolError);
  const [e, f] = memoryPipe();
  await e.write(new Uint8Array([0]));
  await e.closeWrite();
  await assert.rejects(new FrameReader(f).readExact(2), /stream ended after 1/);
  for (const x of [a, b, c, d, e, f]) x.close();
});

Deno.test("FrameReader.asConn() hands back read-ahead bytes first", async () => {
  const [a, b] = memoryPipe();
  await writeAll(a, new Uint8Array([0, 2, 9, 9, 1, 2, 3]));
  const r = new FrameReader(b);
  assert.deepEqual(await r.readU16Frame(), new Uint8Array([9, 9]));
  assert.equal(r.buffered, 3);
  const conn = r.asConn();
  const buf = new Uint8Array(2);
  assert.equal(await conn.read(buf), 2);
  assert.deepEqual([...buf], [1, 2]);
  await a.write(new Uint8Array([4]));
  assert.equal(await conn.read(buf), 1);
  assert.equal(buf[0], 3);
  assert.equal(await conn.read(buf), 1);
  assert.equal(buf[0], 4);
  await conn.write(new Uint8Array([5]));
  assert.equal(await a.read(buf), 1);
  await conn.closeWrite();
  assert.equal(await a.read(buf), null);
  conn.close();
  a.close();
});

Deno.test("writeU16Frame() and writeU32Frame() refuse oversized payloads", async () => {
  const [a, b] = memoryPipe();
  await assert.rejects(writeU16Frame(a, new Uint8Array(65536)), RangeError);
  await assert.rejects(writeU32Frame(a, new Uint8Array(11), 10), RangeError);
  a.close();
  b.close();
});
