import assert from "node:assert/strict";
import { memoryPipe } from "./pipe.ts";

Deno.test("memoryPipe() delivers bytes in order both ways", async () => {
  const [a, b] = memoryPipe();
  await a.write(new Uint8Array([1, 2, 3]));
  await b.write(new Uint8Array([4]));
  const buf = new Uint8Array(2);
  assert.equal(await b.read(buf), 2);
  assert.deepEqual([...buf], [1, 2]);
  assert.equal(await b.read(buf), 1);
  assert.equal(await a.read(buf), 1);
  assert.equal(buf[0], 4);
  a.close();
  b.close();
});

Deno.test("memoryPipe() delays by delayMs", async () => {
  const [a, b] = memoryPipe({ delayMs: 30 });
  const start = performance.now();
  await a.write(new Uint8Array([1]));
  assert.equal(await b.read(new Uint8Array(1)), 1);
  assert.ok(performance.now() - start >= 29);
  a.close();
  b.close();
});

Deno.test("memoryPipe() limits the rate to bytesPerSecond", async () => {
  const [a, b] = memoryPipe({ bytesPerSecond: 1e6 });
  const start = performance.now();
  const writing = a.write(new Uint8Array(100_000));
  let got = 0;
  const buf = new Uint8Array(65536);
  while (got < 100_000) got += (await b.read(buf))!;
  await writing;
  const ms = performance.now() - start;
  assert.ok(ms >= 95, `took ${ms} ms`);
  a.close();
  b.close();
});

Deno.test("memoryPipe() makes writers wait when bufferBytes are held", async () => {
  const [a, b] = memoryPipe({ bufferBytes: 1000 });
  let done = false;
  const writing = a.write(new Uint8Array(3000)).then((n) => {
    done = true;
    return n;
  });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(done, false);
  let got = 0;
  const buf = new Uint8Array(4096);
  while (got < 3000) got += (await b.read(buf))!;
  assert.equal(await writing, 3000);
  a.close();
  b.close();
});

Deno.test("memoryPipe() close() gives EOF after pending bytes; closeWrite() half-closes", async () => {
  const [a, b] = memoryPipe();
  await a.write(new Uint8Array([1]));
  await a.closeWrite();
  await assert.rejects(a.write(new Uint8Array([2])), Deno.errors.BrokenPipe);
  const buf = new Uint8Array(4);
  assert.equal(await b.read(buf), 1);
  assert.equal(await b.read(buf), null);
  await b.write(new Uint8Array([3]));
  assert.equal(await a.read(buf), 1);
  const pending = a.read(buf);
  b.close();
  assert.equal(await pending, null);
  await assert.rejects(b.write(new Uint8Array([4])), Deno.errors.BrokenPipe);
  a.close();
  await assert.rejects(a.write(new Uint8Array([5])), Deno.errors.BrokenPipe);
});
