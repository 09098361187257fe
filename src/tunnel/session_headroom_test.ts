import assert from "node:assert/strict";
import type { Conn } from "../io/conn.ts";
import { memoryPipe } from "../io/pipe.ts";
import { Session } from "./session.ts";
import { simTest } from "./_test_util.ts";

/**
 * `inner` as a transport with one byte of headroom, like a port-forward WebSocket: it checks
 * the byte is free to overwrite and, when `partial`, takes only part of every other
 * `writeWithHeadroom` so the Session writes the rest with plain `write`.
 */
function withHeadroom(inner: Conn, partial: boolean): Conn & { headroomWrites: number } {
  let calls = 0;
  const conn = {
    headroomWrites: 0,
    read: (p: Uint8Array) => inner.read(p),
    write: (p: Uint8Array) => inner.write(p),
    closeWrite: () => inner.closeWrite(),
    close: () => inner.close(),
    writeHeadroom: 1,
    async writeWithHeadroom(buf: Uint8Array): Promise<number> {
      conn.headroomWrites++;
      assert.ok(buf.length > 1);
      buf[0] = 0xee; // the transport's byte: the Session must not have put payload there
      const body = buf.subarray(1);
      const n = partial && calls++ % 2 === 0 ? Math.max(1, body.length >> 1) : body.length;
      return await inner.write(body.subarray(0, n));
    },
  };
  return conn;
}

for (const partial of [false, true]) {
  simTest(
    `Session writes through a transport's headroom without loss (partial takes: ${partial})`,
    async (clock) => {
      const [a, b] = memoryPipe({ clock });
      const transport = withHeadroom(a, partial);
      await using client = new Session(transport, { client: true, clock });
      await using server = new Session(b, { client: false, clock });
      const total = 3 * 1024 * 1024 + 123;
      const data = new Uint8Array(total).map((_, i) => i % 251);
      const s = await client.open();
      const writing = (async () => {
        for (let off = 0; off < total; off += 40_000) {
          await s.write(data.subarray(off, Math.min(total, off + 40_000)));
        }
        await s.closeWrite();
      })();
      const t = (await server.accept())!;
      const got = new Uint8Array(total);
      let len = 0;
      for (let n; (n = await t.read(got.subarray(len))) !== null;) len += n;
      await writing;
      assert.equal(len, total);
      assert.deepEqual(got, data);
      assert.ok(transport.headroomWrites > 0);
    },
  );
}
