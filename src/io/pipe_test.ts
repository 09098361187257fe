import assert from "node:assert/strict";
import { memoryPipe } from "./pipe.ts";
import { simTest } from "../tunnel/_test_util.ts";

// The tests with time in them run on simulated time (`simTest`): exact, and no real sleep.

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

simTest("memoryPipe() delays by delayMs", async (clock) => {
  const [a, b] = memoryPipe({ delayMs: 30, clock });
  await a.write(new Uint8Array([1]));
  assert.equal(await b.read(new Uint8Array(1)), 1);
  assert.equal(clock.now(), 30);
  a.close();
  b.close();
});

simTest("memoryPipe() limits the rate to bytesPerSecond", async (clock) => {
  const [a, b] = memoryPipe({ bytesPerSecond: 1e6, clock });
  const writing = a.write(new Uint8Array(100_000));
  let got = 0;
  const buf = new Uint8Array(65536);
  while (got < 100_000) got += (await b.read(buf))!;
  await writing;
  assert.equal(clock.now(), 100);
  a.close();
  b.close();
});

simTest("memoryPipe() makes writers wait when bufferBytes are held", async (clock) => {
  const [a, b] = memoryPipe({ bufferBytes: 1000, clock });
  let done = false;
  const writing = a.write(new Uint8Array(3000)).then((n) => {
    done = true;
    return n;
  });
  await clock.sleep(10);
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
