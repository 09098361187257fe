import assert from "node:assert/strict";
import { SessionClosedError, StreamResetError } from "./errors.ts";
import { sessionPair, simTest } from "./_test_util.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

simTest("Stream reads made while one waits are served in turn, in order", async (clock) => {
  await using p = sessionPair(clock);
  const s = await p.client.open();
  await s.write(enc.encode("x"));
  const t = (await p.server.accept())!;
  assert.equal(await t.read(new Uint8Array(1)), 1);
  const small = new Uint8Array(2);
  const first = t.read(small);
  const second = t.readChunk(100);
  // A read that needs nothing does not wait behind them.
  assert.equal(await t.read(new Uint8Array(0)), 0);
  await s.write(enc.encode("abcdef"));
  // One arrival serves both: the first takes what fits, the second the rest.
  assert.equal(await first, 2);
  assert.equal(dec.decode(small), "ab");
  assert.equal(dec.decode((await second)!), "cdef");
  const third = t.readChunk(100);
  const fourth = t.read(small);
  await s.closeWrite();
  assert.equal(await third, null);
  assert.equal(await fourth, null);
  t.close();
});

simTest("Stream reset() rejects every waiting read, oldest first", async (clock) => {
  await using p = sessionPair(clock);
  const s = await p.client.open();
  await s.write(enc.encode("x"));
  const t = (await p.server.accept())!;
  assert.equal(await t.read(new Uint8Array(1)), 1);
  const order: string[] = [];
  const reads = [t.read(new Uint8Array(8)), t.readChunk(8)].map((r, i) =>
    r.then(() => order.push(`read ${i}`), (e) => {
      order.push(`${i}: ${(e as Error).name}`);
      throw e;
    })
  );
  s.reset("testing");
  for (const r of reads) await assert.rejects(r, StreamResetError);
  assert.deepEqual(order, ["0: StreamResetError", "1: StreamResetError"]);
  await assert.rejects(t.readChunk(8), StreamResetError);
});

simTest("Stream reads waiting when the session closes reject", async (clock) => {
  const p = sessionPair(clock);
  const s = await p.client.open();
  const reads = [s.read(new Uint8Array(8)), s.readChunk(8)];
  await p.client.close();
  for (const r of reads) await assert.rejects(r, SessionClosedError);
  await p.server.close();
});

simTest("Stream write() waits for window, then goes on where it stopped", async (clock) => {
  await using p = sessionPair(clock);
  const s = await p.client.open();
  const big = new Uint8Array(600 * 1024).map((_, i) => i % 251);
  const wrote = s.write(big);
  const t = (await p.server.accept())!;
  const got = new Uint8Array(big.length);
  let n = 0;
  while (n < big.length) n += (await t.read(got.subarray(n)))!;
  assert.equal(await wrote, big.length);
  assert.deepEqual(got, big);
  s.close();
  t.close();
});
