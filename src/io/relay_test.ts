import assert from "node:assert/strict";
import { memoryPipe } from "./pipe.ts";
import type { Conn } from "./conn.ts";
import { MIN_RELAY_BUFFER, relay, type RelayBudget } from "./relay.ts";

/** A budget that records what it granted and allows at most `limit` bytes of growth. */
function recordingBudget(limit: number): RelayBudget & { granted: number; asks: number[] } {
  const b = {
    granted: 0,
    asks: [] as number[],
    grow(n: number) {
      b.asks.push(n);
      if (b.granted + n > limit) return false;
      b.granted += n;
      return true;
    },
    release(n: number) {
      b.granted -= n;
    },
  };
  return b;
}

/** `conn` with reads that record the size of the buffer they were given. */
function readSizes(conn: Conn): { conn: Conn; sizes: number[] } {
  const sizes: number[] = [];
  return {
    sizes,
    conn: {
      read: (p) => {
        sizes.push(p.length);
        return conn.read(p);
      },
      write: (p) => conn.write(p),
      closeWrite: () => conn.closeWrite(),
      close: () => conn.close(),
    },
  };
}

async function readAll(c: Conn): Promise<Uint8Array> {
  const parts: number[] = [];
  const buf = new Uint8Array(10_000);
  for (let n; (n = await c.read(buf)) !== null;) parts.push(...buf.subarray(0, n));
  return new Uint8Array(parts);
}

Deno.test("relay() reads a quiet connection with a small buffer and grows it for bulk, within the budget, giving it all back at the end", async () => {
  const [app, a] = memoryPipe();
  const [b, far] = memoryPipe();
  const tapped = readSizes(a);
  const budget = recordingBudget(3 * MIN_RELAY_BUFFER);
  const done = relay(tapped.conn, b, { budget });
  // A few small messages: the buffer stays at its first size.
  for (let i = 0; i < 5; i++) await app.write(new Uint8Array([i]));
  const bulk = new Uint8Array(200_000).map((_, i) => i % 251);
  const got = readAll(far);
  await app.write(bulk);
  await app.closeWrite();
  const received = await got;
  far.close();
  const r = await done;
  assert.equal(r.aToB, 5 + bulk.length);
  assert.deepEqual(received.subarray(5), bulk);
  assert.equal(tapped.sizes[0], MIN_RELAY_BUFFER);
  // Growth 4 KiB then 8 KiB fits the 12 KiB budget; the next doubling (16 KiB) is refused, so
  // the buffer stops at 16 KiB and bulk still flows.
  assert.equal(Math.max(...tapped.sizes), 4 * MIN_RELAY_BUFFER);
  assert.ok(budget.asks.includes(4 * MIN_RELAY_BUFFER), "a refused growth was asked for");
  assert.equal(budget.granted, 0, "everything granted is released when the relay ends");
});

Deno.test("relay() takes a connection's own buffers (readChunk) without reading into one of its own", async () => {
  const [app, a] = memoryPipe();
  const [b, far] = memoryPipe();
  let reads = 0;
  const chunks: Conn = {
    read: () => {
      reads++;
      return Promise.resolve(null);
    },
    readChunk: async (max) => {
      const buf = new Uint8Array(max);
      const n = await a.read(buf);
      return n === null ? null : buf.subarray(0, n);
    },
    write: (p) => a.write(p),
    closeWrite: () => a.closeWrite(),
    close: () => a.close(),
  };
  const done = relay(chunks, b);
  const got = readAll(far);
  await app.write(new Uint8Array([1, 2, 3]));
  await app.closeWrite();
  assert.deepEqual(await got, new Uint8Array([1, 2, 3]));
  far.close();
  await done;
  assert.equal(reads, 0);
});

Deno.test("relay() tells onError what failed before it closes either side, and reports it", async () => {
  const [a, far] = memoryPipe();
  const closed: string[] = [];
  const seen: string[] = [];
  const failing: Conn = {
    read: () => Promise.reject(new Error("stream reset by peer")),
    write: (p) => Promise.resolve(p.length),
    closeWrite: () => Promise.resolve(),
    close: () => closed.push("failing"),
  };
  const watched: Conn = {
    read: (p) => a.read(p),
    write: (p) => a.write(p),
    closeWrite: () => a.closeWrite(),
    close: () => {
      closed.push("a");
      a.close();
    },
  };
  const r = await relay(watched, failing, {
    onError: (e) => seen.push(`${(e as Error).message}; closed so far: ${closed.join(",")}`),
  });
  assert.deepEqual(seen, ["stream reset by peer; closed so far: "]);
  assert.equal((r.error as Error).message, "stream reset by peer");
  assert.ok(closed.includes("a") && closed.includes("failing"));
  far.close();
});
