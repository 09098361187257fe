// The sans-IO session core on its own: no driver, no promises, no clock. Time is a number the
// test passes in (through `CoreWire`), and frames between two cores can be lost, delayed and
// reordered.
import assert from "node:assert/strict";
import { type CoreEvents, SessionCore } from "./core.ts";
import { SessionClosedError } from "./errors.ts";
import { encodeFrame, Flag, type Frame, FrameType } from "./frame.ts";
import { Decoder } from "./decoder.ts";
import type { StreamState } from "./stream_state.ts";
import { CoreWire, pseudoRandom, wholeFrames } from "./_test_util.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const KiB = 1024;

/** Everything `s` has buffered, read out (returning credit at `now`). */
function drain(s: StreamState, now: number): Uint8Array {
  const out = new Uint8Array(s.bufferedBytes);
  s.copyOut(out);
  if (s.creditDue) s.returnCredit(now);
  return out;
}

/** Queues pseudo-random bytes on `s` until its send window is spent; returns them. */
function fill(s: StreamState, seed = 1): Uint8Array {
  const data = pseudoRandom(s.sendWindow, seed);
  s.queue(data);
  return data;
}

/** The frames one `pollTransmit` of `core` writes (whole frames, payloads copied). */
function transmitFrames(core: SessionCore, bytes = 256 * KiB, now = 0): Frame[] {
  const buf = new Uint8Array(bytes);
  const n = core.pollTransmit(buf, now);
  core.transmitted(n);
  const d = new Decoder({ maxFrameSize: 0xffffffff });
  d.push(buf.subarray(0, n));
  return wholeFrames(d, { frame: null });
}

Deno.test("SessionCore opens a stream and carries data and FIN both ways, with no I/O", () => {
  const w = new CoreWire({ delayMs: 5 });
  const s = w.a.open(w.now);
  s.queue(enc.encode("hello"));
  w.run(5);
  const t = w.b.accept()!;
  assert.equal(t.id, 1);
  assert.equal(dec.decode(drain(t, w.now)), "hello");
  t.queue(enc.encode("world"));
  t.closeWrite();
  w.run(5);
  assert.ok(s.established, "the ACK arrived");
  assert.equal(dec.decode(drain(s, w.now)), "world");
  assert.ok(s.readEnded);
  s.closeWrite();
  w.run(5);
  assert.ok(s.released && t.released);
  assert.equal(w.a.numStreams + w.b.numStreams, 0);
  assert.deepEqual([s.sentBytes, s.receivedBytes, t.sentBytes, t.receivedBytes], [5, 5, 5, 5]);
  // The start-up pings were answered after two delays.
  assert.equal(w.a.stats.lastRttMs, 10);
  assert.equal(w.b.stats.lastRttMs, 10);
});

Deno.test("SessionCore keepalive: pings on a fixed cadence; a lost answer ends the session at exactly the timeout", () => {
  const w = new CoreWire({
    a: { keepaliveIntervalMs: 1000, keepaliveTimeoutMs: 300 },
    delayMs: 10,
  });
  assert.equal(w.a.pollTimeout(), 1000);
  assert.equal(w.b.pollTimeout(), null, "nothing timed on the side without keepalive");
  w.runUntil(1000);
  assert.equal(w.a.pollTimeout(), 1300, "the ping sent at 1000 times out at 1300");
  w.runUntil(1020);
  assert.equal(w.a.pollTimeout(), 2000, "answered: the next ping is due");
  assert.equal(w.a.stats.lastRttMs, 20);
  // From now on every ping answer towards `a` is lost.
  w.tamper = (f, at) => f.from === "b" && f.frame.type === FrameType.Ping ? null : at;
  w.runUntil(2299);
  assert.ok(!w.a.isClosed);
  assert.equal(w.a.pollTimeout(), 2300);
  w.runUntil(2300);
  assert.ok(w.a.isDone);
  assert.equal(w.a.closeInfo?.reason, "keepalive-timeout");
  assert.match(w.a.closeInfo!.error!.message, /no ping answer within 300 ms/);
  assert.equal(w.a.pollTimeout(), null);
  // The answer was sent: b did its part.
  assert.ok(w.log.some((f) => f.from === "b" && f.sentAt === 2010 && f.at === null));
});

Deno.test("SessionCore write watchdog: a transport write that never finishes ends the session at writeTimeoutMs", () => {
  const w = new CoreWire({ a: { writeTimeoutMs: 100 } });
  w.stalled.add("a");
  w.runUntil(0); // the start-up ping goes into a write that hangs
  assert.equal(w.a.pollTimeout(), 100);
  w.runUntil(99);
  assert.ok(!w.a.isClosed);
  w.runUntil(100);
  assert.ok(w.a.isDone);
  assert.equal(w.a.closeInfo?.reason, "transport-error");
  assert.match(w.a.closeInfo!.error!.message, /did not finish within 100 ms/);
});

Deno.test("SessionCore holds a writer at the window until a delayed WindowUpdate arrives, then wakes it", () => {
  const w = new CoreWire({ delayMs: 10 });
  // Credit (WindowUpdate without flags) from b to a takes 500 ms longer.
  w.tamper = (f, at) =>
    f.from === "b" && f.frame.type === FrameType.WindowUpdate && f.frame.flags === 0
      ? at + 500
      : at;
  const s = w.a.open(w.now);
  let wakes = 0;
  s.waker = { readable: () => {}, writable: () => wakes++ };
  const sent = fill(s);
  assert.equal(sent.length, 256 * KiB);
  assert.equal(s.sendWindow, 0);
  w.runUntil(10);
  const t = w.b.accept()!;
  assert.deepEqual(drain(t, w.now), sent);
  w.runUntil(519);
  assert.equal(s.sendWindow, 0, "no credit before the delayed update arrives");
  assert.equal(wakes, 0);
  w.runUntil(520);
  assert.equal(wakes, 1);
  // All was read at once, within two round trips of the stream's start: the credit is the whole
  // window, grown fourfold by auto-tuning.
  assert.equal(t.receiveWindow, 1024 * KiB);
  assert.equal(s.sendWindow, 1024 * KiB);
});

Deno.test("SessionCore keeps each stream's bytes in order when frames of different streams are reordered", () => {
  const w = new CoreWire({ delayMs: 10, batchBytes: 16 * KiB });
  // Stream 1's data frames take 7 ms longer than stream 3's: the later-sent frames of 3
  // overtake earlier ones of 1, while each stream's own frames keep their order.
  w.tamper = (f, at) => f.frame.type === FrameType.Data && f.frame.streamId === 1 ? at + 7 : at;
  const s1 = w.a.open(w.now);
  const s3 = w.a.open(w.now);
  const d1 = pseudoRandom(100 * KiB, 1);
  const d3 = pseudoRandom(100 * KiB, 3);
  s1.queue(d1);
  s3.queue(d3);
  s1.closeWrite();
  s3.closeWrite();
  w.run(100);
  const [t1, t3] = [w.b.accept()!, w.b.accept()!];
  assert.deepEqual([t1.id, t3.id], [1, 3]);
  assert.deepEqual(drain(t1, w.now), d1);
  assert.deepEqual(drain(t3, w.now), d3);
  assert.ok(t1.readEnded && t3.readEnded);
  const data = w.log.filter((f) => f.from === "a" && f.frame.type === FrameType.Data);
  const overtaken = data.some((f, i) => data.slice(i + 1).some((g) => g.at! < f.at!));
  assert.ok(overtaken, "no frame overtook another: the test reordered nothing");
});

Deno.test("SessionCore takes a SYN that overtook a later stream's SYN for a reused id: a protocol error", () => {
  // Stream ids only rise, so the core needs SYNs in order (as a byte stream delivers them).
  const w = new CoreWire({ delayMs: 10 });
  w.tamper = (f, at) => f.frame.streamId === 1 ? at + 5 : at;
  w.a.open(w.now);
  w.a.open(w.now);
  w.run(15); // 3's SYN at 10, 1's at 15
  assert.equal(w.b.closeInfo?.reason, "protocol-error");
  assert.ok(w.b.isDone, "its GoAway is written");
  w.run(10);
  assert.match(w.b.closeInfo!.error!.message, /stream 1: SYN reuses an old stream id/);
  assert.equal(w.a.closeInfo?.reason, "remote-goaway");
});

Deno.test("SessionCore counts what a lost Data frame took: the sender's and receiver's offsets tell what is missing", () => {
  const w = new CoreWire({ delayMs: 10 });
  let data = 0;
  w.tamper = (f, at) => f.frame.type === FrameType.Data && ++data === 2 ? null : at;
  const s = w.a.open(w.now);
  for (let i = 0; i < 3; i++) s.queue(pseudoRandom(10_000, i + 1));
  w.run(10);
  const t = w.b.accept()!;
  assert.equal(s.sentBytes, 30_000);
  assert.equal(t.receivedBytes, 20_000);
  assert.equal(t.bufferedBytes, 20_000);
  const lost = w.log.find((f) => f.at === null)!;
  assert.equal(lost.frame.length, s.sentBytes - t.receivedBytes);
});

Deno.test("SessionCore auto-tunes a window only when the reader keeps up within two round trips", () => {
  const w = new CoreWire({ delayMs: 10 });
  w.run(20); // the start-up pings: both sides measure 20 ms
  const fast = w.a.open(w.now);
  fill(fast, 1);
  w.run(10);
  const tf = w.b.accept()!;
  drain(tf, w.now); // read on arrival
  assert.equal(tf.receiveWindow, 1024 * KiB);
  assert.equal(tf.windowGrowth, 768 * KiB);

  const slow = w.a.open(w.now);
  fill(slow, 2);
  w.run(10);
  const ts = w.b.accept()!;
  w.run(100); // read five round trips after arrival
  drain(ts, w.now);
  assert.equal(ts.receiveWindow, 256 * KiB);
  assert.equal(ts.windowGrowth, 0);
});

Deno.test("SessionCore writes control frames ahead of queued data and interleaves the streams' data", () => {
  const c = new SessionCore({ client: true }, { now: 0 });
  transmitFrames(c); // the start-up ping
  const s1 = c.open(0);
  const s3 = c.open(0);
  s1.queue(new Uint8Array(200 * KiB));
  s3.queue(new Uint8Array(200 * KiB));
  c.ping(0);
  const frames = transmitFrames(c);
  const kinds = frames.map((f) => `${f.type}:${f.streamId}`);
  // SYNs and the ping first, then 64 KiB data frames taking turns, until the batch is full.
  assert.deepEqual(kinds.slice(0, 3), ["1:1", "1:3", "2:0"]);
  const data = frames.slice(3);
  assert.ok(data.every((f) => f.type === FrameType.Data));
  assert.deepEqual(data.map((f) => f.streamId), [1, 3, 1, 3]);
  assert.equal(data[0].length, 64 * KiB);
  // A control frame queued now still overtakes the rest of the data.
  s1.reset();
  const next = transmitFrames(c);
  assert.deepEqual([next[0].type, next[0].flags, next[0].streamId], [
    FrameType.WindowUpdate,
    Flag.RST,
    1,
  ]);
  assert.ok(next.slice(1).every((f) => f.type === FrameType.Data && f.streamId === 3));
});

Deno.test("SessionCore answers a protocol violation with GoAway(1), then ends once it is written or the flush time is up", () => {
  for (const written of [true, false]) {
    const closed: unknown[] = [];
    const events: CoreEvents = { closed: (info) => closed.push(info) };
    const c = new SessionCore({ client: false, writeTimeoutMs: 100 }, { now: 0, events });
    transmitFrames(c); // the start-up ping
    c.receive(encodeFrame(FrameType.Data, 0, 7, new Uint8Array(3)), false, 5);
    assert.ok(c.isClosed && !c.isDone);
    assert.equal(c.closeInfo?.reason, "protocol-error");
    assert.match(c.closeInfo!.error!.message, /stream 7: data for a stream never opened/);
    assert.throws(() => c.open(5), SessionClosedError);
    assert.equal(c.pollTimeout(), 105);
    const buf = new Uint8Array(1024);
    const n = c.pollTransmit(buf, 5);
    assert.deepEqual([...buf.subarray(0, n)], [...encodeFrame(FrameType.GoAway, 0, 0, 1)]);
    if (written) {
      c.transmitted(n);
    } else {
      c.handleTimeout(104);
      assert.ok(!c.isDone);
      c.handleTimeout(105);
    }
    assert.ok(c.isDone);
    assert.equal(closed.length, 1);
    assert.equal(c.pollTimeout(), null);
  }
});

Deno.test("SessionCore GoAway: no new streams either way; the old one finishes, then both sides end by themselves", () => {
  const w = new CoreWire({ delayMs: 10 });
  const s = w.a.open(w.now);
  s.queue(enc.encode("before"));
  w.run(10);
  const t = w.b.accept()!;
  w.a.goAway();
  assert.throws(() => w.a.open(w.now), SessionClosedError);
  w.run(10);
  assert.ok(w.b.isGoingAway);
  assert.throws(() => w.b.open(w.now), SessionClosedError);
  s.queue(enc.encode(" and after"));
  s.closeWrite();
  w.run(10);
  assert.equal(dec.decode(drain(t, w.now)), "before and after");
  assert.ok(!w.a.isClosed && !w.b.isClosed);
  t.closeWrite();
  w.run(10);
  assert.ok(w.a.isDone && w.b.isDone);
  assert.deepEqual(w.a.closeInfo, { reason: "local", goAwayCode: 0 });
  assert.deepEqual(w.b.closeInfo, { reason: "remote-goaway", goAwayCode: 0 });
});
