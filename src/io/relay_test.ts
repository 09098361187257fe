import assert from "node:assert/strict";
import { memoryPipe } from "./pipe.ts";
import type { Conn } from "./conn.ts";
import { MIN_RELAY_BUFFER, relay, type RelayBudget } from "./relay.ts";
import type { Clock } from "./clock.ts";

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
  // Growth by 1× then 2× MIN_RELAY_BUFFER fits the 3× budget; the next doubling (by 4×) is
  // refused, so the buffer stops at 4× and bulk still flows.
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

/** Lets the relay's pending continuations run (a read resolved, a write passed on). */
const settle = () => new Promise((r) => setTimeout(r, 0));

/** Writes `bytes` from `app` and reads them at `far`, then lets the relay ask for its next read. */
async function through(app: Conn, far: Conn, bytes: Uint8Array): Promise<void> {
  await app.write(bytes);
  const buf = new Uint8Array(bytes.length);
  let got = 0;
  while (got < bytes.length) {
    const n = await far.read(buf.subarray(got));
    assert.notEqual(n, null);
    got += n!;
  }
  assert.deepEqual(buf, bytes);
  await settle();
}

Deno.test("relay() gives a grown buffer back once the socket was drained and stayed quiet a second, and grows it again for the next bulk", async () => {
  const [app, a] = memoryPipe();
  const [b, far] = memoryPipe();
  const tapped = readSizes(a);
  const budget = recordingBudget(Infinity);
  let now = 0;
  const clock: Clock = { now: () => now };
  const done = relay(tapped.conn, b, { budget, clock, maxBuffer: 8 * MIN_RELAY_BUFFER });
  const lastSize = () => tapped.sizes[tapped.sizes.length - 1];
  const bulk = new Uint8Array(20 * MIN_RELAY_BUFFER + 1).map((_, i) => i % 251);
  await through(app, far, bulk);
  assert.equal(lastSize(), 8 * MIN_RELAY_BUFFER, "grown to maxBuffer");
  assert.equal(budget.granted, 7 * MIN_RELAY_BUFFER);
  // Small reads that come soon after the socket was drained keep the buffer.
  await through(app, far, new Uint8Array([1]));
  now += 999;
  await through(app, far, new Uint8Array([2]));
  assert.equal(lastSize(), 8 * MIN_RELAY_BUFFER);
  // One that comes a second after: the growth goes back.
  now += 1000;
  await through(app, far, new Uint8Array([3]));
  assert.equal(lastSize(), MIN_RELAY_BUFFER);
  assert.equal(budget.granted, 0);
  // A quiet spell does not shrink a buffer whose reads fill it.
  await through(app, far, bulk);
  assert.equal(lastSize(), 8 * MIN_RELAY_BUFFER, "grown again");
  now += 60_000;
  await through(app, far, new Uint8Array(8 * MIN_RELAY_BUFFER));
  assert.equal(lastSize(), 8 * MIN_RELAY_BUFFER);
  await app.closeWrite();
  assert.equal(await far.read(new Uint8Array(1)), null, "the half-close is passed on");
  far.close();
  const r = await done;
  assert.equal(r.aToB, 2 * bulk.length + 3 + 8 * MIN_RELAY_BUFFER);
  assert.equal(r.error, undefined);
  assert.equal(budget.granted, 0);
});

Deno.test("relay() grows a buffer up to a maxBuffer that is not a power-of-two multiple of the first size, not past it", async () => {
  const [app, a] = memoryPipe();
  const [b, far] = memoryPipe();
  const tapped = readSizes(a);
  const budget = recordingBudget(Infinity);
  const max = 5 * MIN_RELAY_BUFFER + 7;
  const done = relay(tapped.conn, b, { budget, maxBuffer: max });
  await through(app, far, new Uint8Array(40 * MIN_RELAY_BUFFER));
  assert.equal(Math.max(...tapped.sizes), max);
  assert.deepEqual(budget.asks, [
    MIN_RELAY_BUFFER,
    2 * MIN_RELAY_BUFFER,
    max - 4 * MIN_RELAY_BUFFER,
  ]);
  app.close();
  far.close();
  await done;
  assert.equal(budget.granted, 0);
});

Deno.test("relay() passes a half-close on, so a program that shuts its write side reads the whole reply", async () => {
  const [app, a] = memoryPipe();
  const [b, far] = memoryPipe();
  const done = relay(a, b);
  await app.write(new TextEncoder().encode("request"));
  await app.closeWrite();
  assert.equal(new TextDecoder().decode(await readAll(far)), "request");
  const reply = new Uint8Array(100_000).map((_, i) => i % 253);
  await far.write(reply);
  await far.closeWrite();
  assert.deepEqual(await readAll(app), reply);
  const r = await done;
  assert.deepEqual(r, { aToB: 7, bToA: reply.length });
});

Deno.test("relay() closes both sides when the signal aborts, resolves without an error and stops listening", async () => {
  const [app, a] = memoryPipe();
  const [b, far] = memoryPipe();
  const ac = new AbortController();
  const listening: string[] = [];
  const signal = ac.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<typeof add>) => {
    listening.push("add");
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<typeof remove>) => {
    listening.push("remove");
    remove(...args);
  };
  const errors: unknown[] = [];
  const done = relay(a, b, { signal, onError: (e) => errors.push(e) });
  await through(app, far, new Uint8Array([1, 2]));
  ac.abort();
  const r = await done;
  assert.deepEqual(r, { aToB: 2, bToA: 0 });
  assert.deepEqual(errors, []);
  assert.deepEqual(listening, ["add", "remove"]);
  assert.equal(await far.read(new Uint8Array(1)), null, "b was closed");
  await assert.rejects(app.write(new Uint8Array(1)), Deno.errors.BrokenPipe, "a was closed");
  // Already aborted: closed before anything moves.
  const [c, d] = memoryPipe();
  const r2 = await relay(c, d, { signal });
  assert.deepEqual(r2, { aToB: 0, bToA: 0 });
});

Deno.test("relay() ends on a failed write: onError first, both sides closed, the budget's grants given back", async () => {
  const [app, a] = memoryPipe();
  const budget = recordingBudget(Infinity);
  let written = 0;
  const closed: string[] = [];
  let endRead = () => {};
  const failing: Conn = {
    read: () => new Promise<null>((resolve) => endRead = () => resolve(null)),
    write: (p) => {
      if (written > 10 * MIN_RELAY_BUFFER) return Promise.reject(new Error("connection reset"));
      written += p.length;
      return Promise.resolve(p.length);
    },
    closeWrite: () => Promise.resolve(),
    close: () => {
      closed.push("b");
      endRead();
    },
  };
  const seen: string[] = [];
  const done = relay(a, failing, {
    budget,
    onError: (e) => {
      seen.push(`${(e as Error).message}; closed so far: ${closed.join(",")}`);
      throw new Error("the owner's callback fails too");
    },
  });
  await app.write(new Uint8Array(40 * MIN_RELAY_BUFFER));
  const r = await done;
  assert.deepEqual(seen, ["connection reset; closed so far: "]);
  assert.equal((r.error as Error).message, "connection reset");
  assert.equal(r.aToB, written);
  assert.ok(budget.granted === 0 && budget.asks.length > 0, "grew, and gave it all back");
  assert.deepEqual(closed, ["b"]);
  await assert.rejects(app.write(new Uint8Array(1)), Deno.errors.BrokenPipe, "a was closed");
});

Deno.test("relay() never rejects: a read that throws at once is reported as the error", async () => {
  const [b, far] = memoryPipe();
  const boom: Conn = {
    read: () => {
      throw new Error("bad resource");
    },
    readChunk: undefined,
    write: (p) => Promise.resolve(p.length),
    closeWrite: () => Promise.resolve(),
    close: () => {},
  };
  const r = await relay(boom, b);
  assert.equal((r.error as Error).message, "bad resource");
  assert.equal(await far.read(new Uint8Array(1)), null);
  const chunky: Conn = { ...boom, readChunk: () => Promise.reject(new Error("stream reset")) };
  const [c] = memoryPipe();
  const r2 = await relay(chunky, c);
  assert.equal((r2.error as Error).message, "stream reset");
});
