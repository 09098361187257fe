import assert from "node:assert/strict";
import type { Conn } from "../stack/dialer.ts";
import { ProtocolError, SessionClosedError, StreamResetError } from "./errors.ts";
import { encodeFrame, Flag, FrameType } from "./frame.ts";
import { memoryPipe } from "./pipe.ts";
import { Session } from "./session.ts";
import {
  pseudoRandom,
  readAll,
  readFramesUntil,
  relayedPair,
  sessionPair,
  sha256,
} from "./_test_util.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("Session open() and accept() carry data both ways", async () => {
  await using p = sessionPair();
  const s = await p.client.open();
  await s.write(enc.encode("ping"));
  const t = (await p.server.accept())!;
  assert.equal(t.id, s.id);
  assert.equal(s.id % 2, 1);
  const buf = new Uint8Array(16);
  assert.equal(dec.decode(buf.subarray(0, (await t.read(buf))!)), "ping");
  await t.write(enc.encode("pong"));
  assert.equal(dec.decode(buf.subarray(0, (await s.read(buf))!)), "pong");
  assert.equal(p.client.stats.streamsOpened, 1);
  assert.equal(p.server.stats.streamsAccepted, 1);
  // Server-opened streams are even and flow the other way.
  const u = await p.server.open();
  assert.equal(u.id % 2, 0);
  await u.write(enc.encode("x"));
  const v = (await p.client.accept())!;
  assert.equal(await v.read(buf), 1);
  for (const x of [s, t, u, v]) x.close();
  assert.ok(p.client.stats.bytesOut > 0 && p.client.stats.bytesIn > 0);
});

Deno.test("Session closeWrite() delivers EOF while the other direction keeps working", async () => {
  await using p = sessionPair();
  const s = await p.client.open();
  await s.write(enc.encode("request"));
  await s.closeWrite();
  await assert.rejects(s.write(enc.encode("more")), Deno.errors.BrokenPipe);
  const t = (await p.server.accept())!;
  assert.equal(dec.decode(await readAll(t)), "request");
  assert.equal(await t.read(new Uint8Array(1)), null);
  for (let i = 0; i < 3; i++) await t.write(enc.encode(`reply${i};`));
  await t.closeWrite();
  assert.equal(dec.decode(await readAll(s)), "reply0;reply1;reply2;");
  // Both FINs exchanged: the stream left both tables.
  assert.equal(p.client.numStreams, 0);
  assert.equal(p.server.numStreams, 0);
  assert.ok(s.released && t.released);
});

Deno.test("Stream reset() makes the peer's reads and writes reject", async () => {
  await using p = sessionPair();
  const s = await p.client.open();
  await s.write(enc.encode("a"));
  const t = (await p.server.accept())!;
  const pending = t.read(new Uint8Array(8));
  assert.equal(await pending, 1);
  const pending2 = t.read(new Uint8Array(8));
  s.reset();
  await assert.rejects(pending2, StreamResetError);
  await assert.rejects(t.write(enc.encode("b")), StreamResetError);
  await assert.rejects(s.read(new Uint8Array(1)), StreamResetError);
  await assert.rejects(s.write(enc.encode("c")), StreamResetError);
  assert.equal(p.client.numStreams, 0);
  assert.equal(p.server.numStreams, 0);
});

Deno.test("Session carries 200 concurrent streams, each with its own data", async () => {
  await using p = sessionPair();
  const echo = (async () => {
    const tasks: Promise<void>[] = [];
    for await (const t of p.server) {
      tasks.push((async () => {
        const data = await readAll(t);
        await t.write(data);
        await t.closeWrite();
        t.close();
      })());
      if (tasks.length === 200) break;
    }
    await Promise.all(tasks);
  })();
  const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const s = await p.client.open();
    const data = pseudoRandom(1000 + i * 997, i + 1);
    await s.write(data);
    await s.closeWrite();
    const back = await readAll(s);
    s.close();
    return (await sha256(back)) === (await sha256(data));
  }));
  await echo;
  assert.ok(results.every((x) => x));
  assert.equal(p.client.numStreams, 0);
  assert.equal(p.server.numStreams, 0);
});

Deno.test("Session moves 64 MiB intact on one stream", async () => {
  await using p = sessionPair();
  const size = 64 * 1024 * 1024;
  const data = pseudoRandom(size, 7);
  const s = await p.client.open();
  const sending = (async () => {
    for (let off = 0; off < size; off += 1 << 20) {
      await s.write(data.subarray(off, off + (1 << 20)));
    }
    await s.closeWrite();
  })();
  const t = (await p.server.accept())!;
  const got = await readAll(t, 256 * 1024);
  await sending;
  assert.equal(got.length, size);
  assert.equal(await sha256(got), await sha256(data));
  t.close();
  s.close();
});

Deno.test("Session buffers no more than the window for a stream whose reader stopped", async () => {
  await using p = sessionPair();
  const s = await p.client.open();
  let written = 0;
  const writer = (async () => {
    const chunk = new Uint8Array(64 * 1024);
    try {
      while (written < 4 * 1024 * 1024) {
        await s.write(chunk);
        written += chunk.length;
      }
    } catch (e) {
      if (!(e instanceof StreamResetError)) throw e;
    }
  })();
  const t = (await p.server.accept())!;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(t.bufferedBytes, 256 * 1024);
  assert.equal(p.server.stats.bufferedBytes, 256 * 1024);
  assert.ok(written <= 256 * 1024, `writer got ahead: ${written}`);
  assert.equal(s.sendWindow, 0);
  // Another stream on the same session still works.
  const s2 = await p.client.open();
  await s2.write(enc.encode("still alive"));
  const t2 = (await p.server.accept())!;
  const buf = new Uint8Array(32);
  assert.equal(dec.decode(buf.subarray(0, (await t2.read(buf))!)), "still alive");
  // Reading a little (less than half a window) sends no credit yet; then drain a bit more.
  const rbuf = new Uint8Array(200 * 1024);
  let got = 0;
  while (got < 200 * 1024) got += (await t.read(rbuf.subarray(0, 200 * 1024 - got)))!;
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(p.server.stats.bufferedBytes <= t.receiveWindow);
  t.reset();
  await writer;
  s2.close();
  t2.close();
});

Deno.test("Session grows the window so a 20 ms round trip does not cap throughput", async () => {
  await using p = sessionPair({}, { delayMs: 10 });
  const rtt = await p.client.ping();
  assert.ok(rtt >= 18, `rtt ${rtt}`);
  const s = await p.client.open();
  const size = 48 * 1024 * 1024;
  const chunk = new Uint8Array(256 * 1024);
  const start = performance.now();
  const sending = (async () => {
    for (let off = 0; off < size; off += chunk.length) await s.write(chunk);
    await s.closeWrite();
  })();
  const t = (await p.server.accept())!;
  const buf = new Uint8Array(256 * 1024);
  let got = 0;
  while (true) {
    const n = await t.read(buf);
    if (n === null) break;
    got += n;
  }
  await sending;
  const seconds = (performance.now() - start) / 1000;
  const rate = got / seconds;
  const capped = (256 * 1024) / 0.02;
  assert.equal(got, size);
  assert.ok(rate >= 4 * capped, `${(rate / 1e6).toFixed(1)} MB/s, window ${t.receiveWindow}`);
  assert.ok(t.receiveWindow > 256 * 1024);
  assert.ok(t.receiveWindow <= 16 * 1024 * 1024);
  s.close();
  t.close();
});

Deno.test("Session.ping() measures the round trip", async () => {
  await using p = sessionPair({}, { delayMs: 10 });
  const rtt = await p.client.ping();
  assert.ok(rtt >= 19 && rtt < 80, `rtt ${rtt}`);
  assert.ok((await p.server.ping()) >= 19);
  assert.equal(p.client.stats.lastRttMs !== null, true);
  const ac = new AbortController();
  const aborted = p.client.ping({ signal: ac.signal });
  ac.abort(new Error("stop"));
  await assert.rejects(aborted, /stop/);
});

Deno.test("Session.goAway() stops new streams both ways; old ones finish", async () => {
  await using p = sessionPair();
  const s = await p.client.open();
  await s.write(enc.encode("before"));
  const t = (await p.server.accept())!;
  await p.client.goAway();
  await assert.rejects(p.client.open(), SessionClosedError);
  assert.equal(await p.client.accept(), null);
  // Wait for the GoAway to arrive.
  while (!p.server.isGoingAway) await new Promise((r) => setTimeout(r, 1));
  await assert.rejects(p.server.open(), SessionClosedError);
  assert.equal(await p.server.accept(), null);
  assert.ok(!p.client.isClosed && !p.server.isClosed);
  await s.write(enc.encode(" and after"));
  await s.closeWrite();
  assert.equal(dec.decode(await readAll(t)), "before and after");
  await t.write(enc.encode("reply"));
  await t.closeWrite();
  assert.equal(dec.decode(await readAll(s)), "reply");
  assert.deepEqual(await p.client.closed, { reason: "local", goAwayCode: 0 });
  assert.deepEqual(await p.server.closed, { reason: "remote-goaway", goAwayCode: 0 });
});

Deno.test("Session answers SYNs past maxStreams with RST; open() past it rejects", async () => {
  await using p = sessionPair({ client: { maxStreams: 3 }, server: { maxStreams: 2 } });
  const streams = [await p.client.open(), await p.client.open(), await p.client.open()];
  await assert.rejects(p.client.open(), RangeError);
  for (const s of streams) await s.write(enc.encode("x")).catch(() => {});
  await assert.rejects(streams[2].read(new Uint8Array(1)), StreamResetError);
  assert.ok((await p.server.accept()) !== null);
  assert.ok((await p.server.accept()) !== null);
  assert.equal(p.server.numStreams, 2);
  assert.equal(p.client.numStreams, 2);
  // A slot frees up once a stream is reset.
  streams[0].reset();
  assert.ok(await p.client.open());
});

Deno.test("Session answers SYNs past acceptBacklog with RST", async () => {
  await using p = sessionPair({ server: { acceptBacklog: 2 } });
  const streams = await Promise.all([1, 2, 3, 4].map(() => p.client.open()));
  for (const s of streams) await s.write(enc.encode("x")).catch(() => {});
  await assert.rejects(streams[2].read(new Uint8Array(1)), StreamResetError);
  await assert.rejects(streams[3].read(new Uint8Array(1)), StreamResetError);
  const a = (await p.server.accept())!;
  const b = (await p.server.accept())!;
  assert.deepEqual([a.id, b.id], [streams[0].id, streams[1].id]);
  assert.equal(p.server.numStreams, 2);
  // Accepted streams send ACK.
  await a.write(enc.encode("y"));
  assert.equal(await streams[0].read(new Uint8Array(1)), 1);
  assert.ok(streams[0].established);
});

const violations: [string, () => Uint8Array[]][] = [
  ["bad version", () => [new Uint8Array([9, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])]],
  ["unknown type", () => [new Uint8Array([0, 7, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])]],
  ["data beyond the window", () => [
    encodeFrame(FrameType.WindowUpdate, Flag.SYN, 1, 0),
    encodeFrame(FrameType.Data, 0, 1, new Uint8Array(200 * 1024)),
    encodeFrame(FrameType.Data, 0, 1, new Uint8Array(100 * 1024)),
  ]],
  ["data on a stream never opened", () => [encodeFrame(FrameType.Data, 0, 7, new Uint8Array(3))]],
  ["an oversized frame", () => [encodeFrame(FrameType.Data, Flag.SYN, 1, 2 * 1024 * 1024)]],
  ["a SYN with this side's parity", () => [encodeFrame(FrameType.WindowUpdate, Flag.SYN, 2, 0)]],
  ["a duplicate SYN", () => [
    encodeFrame(FrameType.WindowUpdate, Flag.SYN, 1, 0),
    encodeFrame(FrameType.WindowUpdate, Flag.SYN, 1, 0),
  ]],
  ["data after FIN", () => [
    encodeFrame(FrameType.WindowUpdate, Flag.SYN | Flag.FIN, 1, 0),
    encodeFrame(FrameType.Data, 0, 1, new Uint8Array(1)),
  ]],
  ["garbage", () => [pseudoRandom(100, 3).map((b, i) => i === 0 ? b | 0x80 : b)]],
];

for (const [name, bytes] of violations) {
  Deno.test(`Session sends GoAway(1) and closes on ${name}`, async () => {
    const [a, b] = memoryPipe();
    const victim = new Session(a, { client: false });
    for (const chunk of bytes()) await b.write(chunk);
    const frames = await readFramesUntil(b, (f) => f.type === FrameType.GoAway);
    const goAway = frames.at(-1)!;
    assert.equal(goAway.type, FrameType.GoAway);
    assert.equal(goAway.length, 1);
    const info = await victim.closed;
    assert.equal(info.reason, "protocol-error");
    assert.ok(info.error instanceof ProtocolError);
    assert.equal(info.goAwayCode, undefined);
    assert.equal(await b.read(new Uint8Array(64)), null); // transport closed
    b.close();
  });
}

Deno.test("Session protocol error: both sides end (protocol-error / remote-goaway)", async () => {
  await using p = relayedPair();
  const s = await p.client.open();
  await s.write(enc.encode("x"));
  const t = (await p.server.accept())!;
  await p.injectToServer(encodeFrame(FrameType.Data, 0, 99, new Uint8Array(1)));
  const [ci, si] = await Promise.all([p.client.closed, p.server.closed]);
  assert.equal(si.reason, "protocol-error");
  assert.match(si.error!.message, /stream 99: data for a stream never opened/);
  assert.equal(ci.reason, "remote-goaway");
  assert.equal(ci.goAwayCode, 1);
  await assert.rejects(s.read(new Uint8Array(1)), SessionClosedError);
  await assert.rejects(t.write(enc.encode("y")), SessionClosedError);
});

Deno.test("Session detects a peer that stops answering within keepaliveTimeoutMs", async () => {
  let closed = false;
  let wake: () => void = () => {};
  const swallow: Conn = {
    read: () => closed ? Promise.resolve(null) : new Promise((r) => wake = () => r(null)),
    write: (p) => Promise.resolve(p.length),
    closeWrite: () => Promise.resolve(),
    close: () => {
      closed = true;
      wake();
    },
  };
  const start = performance.now();
  const s = new Session(swallow, {
    client: true,
    keepaliveIntervalMs: 50,
    keepaliveTimeoutMs: 200,
  });
  const info = await s.closed;
  const took = performance.now() - start;
  assert.equal(info.reason, "keepalive-timeout");
  assert.ok(took >= 240 && took < 600, `took ${took} ms`);
  assert.ok(closed);
});

Deno.test("Session keepalive keeps a healthy session open", async () => {
  await using p = sessionPair({ client: { keepaliveIntervalMs: 20, keepaliveTimeoutMs: 100 } }, {
    delayMs: 5,
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!p.client.isClosed);
  assert.ok(p.client.stats.lastRttMs! >= 9);
});

Deno.test("Session closes when a transport write does not finish within writeTimeoutMs", async () => {
  let closed = false;
  let wake: () => void = () => {};
  const stuck: Conn = {
    read: () => closed ? Promise.resolve(null) : new Promise((r) => wake = () => r(null)),
    write: () => new Promise(() => {}),
    closeWrite: () => Promise.resolve(),
    close: () => {
      closed = true;
      wake();
    },
  };
  const s = new Session(stuck, { client: true, writeTimeoutMs: 100 });
  const info = await s.closed;
  assert.equal(info.reason, "transport-error");
  assert.match(info.error!.message, /did not finish within 100 ms/);
});

Deno.test("Session.close() ends every stream with SessionClosedError", async () => {
  await using p = sessionPair();
  const s = await p.client.open();
  await s.write(enc.encode("x"));
  const t = (await p.server.accept())!;
  const reading = s.read(new Uint8Array(1));
  const accepting = p.client.accept();
  const reason = new Error("shutting down");
  await p.client.close(reason);
  await assert.rejects(reading, SessionClosedError);
  assert.equal(await accepting, null);
  await assert.rejects(s.write(enc.encode("y")), SessionClosedError);
  await assert.rejects(p.client.open(), SessionClosedError);
  await assert.rejects(p.client.ping(), SessionClosedError);
  assert.deepEqual(await p.client.closed, { reason: "local", error: reason, goAwayCode: 0 });
  assert.ok(p.client.isClosed);
  // The peer saw the GoAway, then end of stream.
  assert.equal((await p.server.closed).reason, "remote-goaway");
  await assert.rejects(t.read(new Uint8Array(1)), SessionClosedError);
});

Deno.test("Session keeps data that ended with FIN readable after the session ends", async () => {
  await using p = sessionPair();
  const s = await p.client.open();
  await s.write(enc.encode("complete"));
  await s.closeWrite();
  const t = (await p.server.accept())!;
  while (t.bufferedBytes < 8) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 5));
  await p.client.close();
  await p.server.closed;
  assert.equal(dec.decode(await readAll(t)), "complete");
});

Deno.test("Session reports transport-eof when the transport ends without GoAway", async () => {
  const [a, b] = memoryPipe();
  const s = new Session(a, { client: true });
  b.close();
  assert.deepEqual(await s.closed, { reason: "transport-eof" });
});

Deno.test("Session sends control frames and small writes ahead of a bulk stream", async () => {
  await using p = sessionPair({}, { bytesPerSecond: 50e6, bufferBytes: 128 * 1024 });
  const bulk = await p.client.open();
  const bulkDone = (async () => {
    const chunk = new Uint8Array(1024 * 1024);
    try {
      for (let i = 0; i < 40; i++) await bulk.write(chunk);
    } catch {
      // reset at the end
    }
  })();
  const bulkPeer = (await p.server.accept())!;
  const draining = readAll(bulkPeer).catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  const start = performance.now();
  const rtt = await p.client.ping();
  const small = await p.client.open();
  await small.write(enc.encode("hi"));
  const smallPeer = (await p.server.accept())!;
  const buf = new Uint8Array(2);
  assert.equal(await smallPeer.read(buf), 2);
  const took = performance.now() - start;
  // Bulk data is queued for 16 MiB / 50 MB/s ≈ 300 ms; the ping and the small write are not.
  assert.ok(rtt < 60, `ping took ${rtt} ms behind bulk data`);
  assert.ok(took < 120, `small stream took ${took} ms behind bulk data`);
  bulk.reset();
  small.close();
  smallPeer.close();
  await bulkDone;
  await draining;
});

Deno.test("Session streams work as an async iterator of accepted streams", async () => {
  await using p = sessionPair();
  await (await p.client.open()).write(enc.encode("1"));
  await (await p.client.open()).write(enc.encode("2"));
  const ids: number[] = [];
  for await (const t of p.server) {
    ids.push(t.id);
    if (ids.length === 2) break;
  }
  assert.deepEqual(ids, [1, 3]);
});
