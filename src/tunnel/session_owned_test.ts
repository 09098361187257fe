import assert from "node:assert/strict";
import type { Conn } from "../io/conn.ts";
import { Decoder, MAX_RETAIN_FACTOR } from "./decoder.ts";
import { encodeFrame, FrameType } from "./frame.ts";
import { memoryPipe } from "../io/pipe.ts";
import { Session } from "./session.ts";
import { pseudoRandom, simTest } from "./_test_util.ts";

Deno.test("Decoder hands out payloads of an owned chunk as owned views, unless small against the buffer", () => {
  const big = (id: number, n: number) => encodeFrame(FrameType.Data, 0, id, new Uint8Array(n));
  const frames = [big(1, 64 * 1024), big(3, 64 * 1024), big(5, 1024)];
  const all = new Uint8Array(frames.reduce((s, f) => s + f.length, 0));
  let off = 0;
  for (const f of frames) all.set(f, (off += f.length) - f.length);
  const seen = (owned: boolean) => {
    const d = new Decoder();
    d.push(all, owned);
    return [...d].map((f) => ({ owned: f.owned, view: f.data.buffer === all.buffer }));
  };
  // 1 KiB in a 129 KiB buffer would keep 129 KiB alive: copied instead.
  assert.ok(1024 * MAX_RETAIN_FACTOR < all.length && 64 * 1024 * MAX_RETAIN_FACTOR > all.length);
  assert.deepEqual(seen(true), [
    { owned: true, view: true },
    { owned: true, view: true },
    { owned: false, view: true },
  ]);
  // A chunk the caller reuses is never handed out as owned.
  assert.ok(seen(false).every((f) => !f.owned));
});

/**
 * `inner` as a transport that either hands out buffers of its own (`readChunk`, like a
 * WebSocket's messages) or, without it, is read into the Session's one reused buffer.
 */
function transport(inner: Conn, ownBuffers: boolean): Conn {
  const conn: Conn = {
    read: (p) => inner.read(p),
    write: (p) => inner.write(p),
    closeWrite: () => inner.closeWrite(),
    close: () => inner.close(),
  };
  if (ownBuffers) {
    conn.readChunk = async (max) => {
      const buf = new Uint8Array(Math.min(max, 300_000));
      const n = await inner.read(buf);
      return n === null ? null : buf.subarray(0, n);
    };
  }
  return conn;
}

for (const ownBuffers of [false, true]) {
  simTest(
    `Stream.readChunk() chunks stay intact while more arrives (transport hands out its own buffers: ${ownBuffers})`,
    async (clock) => {
      const [a, b] = memoryPipe({ clock });
      await using client = new Session(a, { client: true, clock });
      await using server = new Session(transport(b, ownBuffers), { client: false, clock });
      const total = 4 * 1024 * 1024 + 17;
      const data = pseudoRandom(total, 7);
      const s = await client.open();
      const writing = (async () => {
        for (let off = 0; off < total; off += 100_000) {
          await s.write(data.subarray(off, Math.min(total, off + 100_000)));
        }
        await s.closeWrite();
      })();
      const t = (await server.accept())!;
      // Keep every chunk and compare only at the end: a chunk that aliased a buffer the session
      // or the transport reuses would have been overwritten by then.
      const chunks: Uint8Array[] = [];
      for (let c; (c = await t.readChunk(70_000)) !== null;) {
        assert.ok(c.length > 0 && c.length <= 70_000);
        chunks.push(c);
      }
      await writing;
      const got = new Uint8Array(total);
      let len = 0;
      for (const c of chunks) got.set(c, (len += c.length) - c.length);
      assert.equal(len, total);
      assert.deepEqual(got, data);
    },
  );
}
