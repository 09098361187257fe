// Resumable sessions in the sans-IO core: two cores joined by a byte-level wire that can be cut
// (losing whatever was in flight, in either direction, even mid-frame), then resumed with the
// offsets each side received. Every byte must arrive once and in order; what each side keeps
// must stay bounded.
import assert from "node:assert/strict";
import { type SessionCloseInfo, SessionCore } from "./core.ts";
import type { SessionOptions } from "./config.ts";
import { encodeFrame, FrameType } from "./frame.ts";
import type { StreamState } from "./stream_state.ts";
import { pseudoRandom } from "./_test_util.ts";

const KiB = 1024;

/** Two resumable cores and the bytes between them; `cut` loses what is in flight. */
class ByteWire {
  now = 0;
  readonly a: SessionCore;
  readonly b: SessionCore;
  readonly detached: { a: SessionCloseInfo[]; b: SessionCloseInfo[] } = { a: [], b: [] };
  /** Bytes written and not yet delivered, per direction. */
  readonly inFlight: { ab: Uint8Array[]; ba: Uint8Array[] } = { ab: [], ba: [] };
  /** While true, nothing is delivered (a black hole): writes go into `inFlight` and stay. */
  blackHole = false;
  #buf = new Uint8Array(96 * KiB);

  constructor(a: Partial<SessionOptions> = {}, b: Partial<SessionOptions> = {}) {
    this.a = new SessionCore({ resumable: true, ...a, client: true }, {
      now: 0,
      events: { detached: (i) => this.detached.a.push(i) },
    });
    this.b = new SessionCore({ resumable: true, ...b, client: false }, {
      now: 0,
      events: { detached: (i) => this.detached.b.push(i) },
    });
  }

  /** Moves bytes until neither side has anything to write (or `rounds` run out). */
  pump(rounds = 10_000): void {
    for (let i = 0; i < rounds; i++) {
      let moved = false;
      for (const [from, to, q] of [[this.a, this.b, "ab"], [this.b, this.a, "ba"]] as const) {
        const n = from.pollTransmit(this.#buf, this.now);
        if (n > 0) {
          from.transmitted(n);
          this.inFlight[q].push(this.#buf.slice(0, n));
          moved = true;
        }
        if (!this.blackHole) {
          for (const chunk of this.inFlight[q].splice(0)) to.receive(chunk, true, this.now);
        }
      }
      for (const c of [this.a, this.b]) {
        const at = c.pollTimeout();
        if (at !== null && at <= this.now) c.handleTimeout(this.now);
      }
      if (!moved) return;
    }
  }

  /** Lets `ms` pass, firing deadlines and moving bytes. */
  advance(ms: number, step = 10): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + step);
      this.pump();
    }
  }

  /**
   * The transport breaks: each direction delivers only its first `keep` bytes still in flight
   * (the rest, possibly mid-frame, is lost), then both sides see it end.
   */
  cut(keep: { ab?: number; ba?: number } = {}): void {
    for (const [to, q] of [[this.b, "ab"], [this.a, "ba"]] as const) {
      let left = keep[q] ?? 0;
      for (const chunk of this.inFlight[q].splice(0)) {
        if (left <= 0) break;
        const part = chunk.subarray(0, Math.min(left, chunk.length));
        to.receive(part.slice(), true, this.now);
        left -= part.length;
      }
    }
    this.a.transportEof();
    this.b.transportEof();
  }

  /** A new transport: each side resumes from what the other received. */
  resume(): void {
    assert.equal(this.a.resume(this.b.receivedOffset, this.now), null);
    assert.equal(this.b.resume(this.a.receivedOffset, this.now), null);
    this.blackHole = false;
  }
}

/** Reads everything `s` has buffered into `into` (returning credit). */
function drainInto(s: StreamState, into: Uint8Array[], now: number): void {
  const out = new Uint8Array(s.bufferedBytes);
  s.copyOut(out);
  if (out.length > 0) into.push(out);
  if (s.creditDue) s.returnCredit(now);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Writes `data` on `s` as its window allows; returns the offset written so far. */
function feed(s: StreamState, data: Uint8Array, from: number): number {
  const n = Math.min(s.sendWindow, data.length - from);
  if (n > 0) s.queue(data.subarray(from, from + n));
  return from + n;
}

/**
 * Sends `up` from a's stream and `down` from b's, cutting the wire at each of `cutsAt` (bytes
 * received by b), losing the last writes in flight both ways (`keep` bytes of them arrive);
 * resumes each time. Returns what each side read.
 */
function transferWithCuts(
  up: Uint8Array,
  down: Uint8Array,
  cutsAt: number[],
  keep: { ab?: number; ba?: number },
): { gotUp: Uint8Array; gotDown: Uint8Array; w: ByteWire } {
  const w = new ByteWire();
  const s = w.a.open(w.now);
  w.pump();
  const t = w.b.accept()!;
  const gotUp: Uint8Array[] = [];
  const gotDown: Uint8Array[] = [];
  let upAt = 0;
  let downAt = 0;
  const cuts = [...cutsAt];
  for (let round = 0; round < 100_000; round++) {
    upAt = feed(s, up, upAt);
    downAt = feed(t, down, downAt);
    // Writes pile up in flight (not delivered) until the next delivery: a cut loses them.
    w.blackHole = true;
    w.pump(1);
    const received = gotUp.reduce((n, p) => n + p.length, 0) + t.bufferedBytes;
    if (cuts.length > 0 && received >= cuts[0]) {
      cuts.shift();
      w.cut(keep);
      assert.ok(w.a.isDetached && w.b.isDetached, "both sides detached, not closed");
      assert.ok(!s.released && !t.released, "streams survive the cut");
      w.advance(5_000); // an outage: nothing moves, nothing times out
      assert.ok(w.a.isDetached && w.b.isDetached);
      w.resume();
    }
    w.blackHole = false;
    w.pump();
    if (w.a.isClosed || w.b.isClosed) {
      throw new Error(`a: ${w.a.closeInfo?.error?.message}, b: ${w.b.closeInfo?.error?.message}`);
    }
    drainInto(t, gotUp, w.now);
    drainInto(s, gotDown, w.now);
    w.now += 1;
    const upDone = gotUp.reduce((n, p) => n + p.length, 0) === up.length;
    const downDone = gotDown.reduce((n, p) => n + p.length, 0) === down.length;
    if (upDone && downDone) break;
  }
  return { gotUp: concat(gotUp), gotDown: concat(gotDown), w };
}

Deno.test("resumable core: cut while both directions send, the last writes lost, resumed: every byte once, in order", () => {
  const up = pseudoRandom(3 * 1024 * KiB, 7);
  const down = pseudoRandom(2 * 1024 * KiB, 8);
  const { gotUp, gotDown, w } = transferWithCuts(up, down, [300 * KiB, 1500 * KiB], {});
  assert.equal(gotUp.length, up.length);
  assert.deepEqual(gotUp, up);
  assert.deepEqual(gotDown, down);
  assert.ok(!w.a.isClosed && !w.b.isClosed);
  assert.equal(w.detached.a.length, 2);
  assert.equal(w.detached.a[0].reason, "transport-eof");
});

Deno.test("resumable core: a cut in the middle of a frame (part of it arrived) resumes at that byte", () => {
  const up = pseudoRandom(1024 * KiB, 3);
  const down = pseudoRandom(1024 * KiB, 4);
  // 30,001 bytes of the lost writes arrive: a Data frame is cut inside its payload (or header).
  for (const keep of [{ ab: 30_001, ba: 5 }, { ab: 7, ba: 40_003 }, { ab: 12, ba: 12 }]) {
    const { gotUp, gotDown } = transferWithCuts(up, down, [200 * KiB, 600 * KiB], keep);
    assert.deepEqual(gotUp, up, `up, keeping ${JSON.stringify(keep)}`);
    assert.deepEqual(gotDown, down, `down, keeping ${JSON.stringify(keep)}`);
  }
});

Deno.test("resumable core: acknowledgements free what was kept; unacknowledged data stops at the retain limit", () => {
  const w = new ByteWire({ retainLimit: 256 * KiB, maxWindow: 1024 * KiB });
  const s = w.a.open(w.now);
  w.pump();
  const t = w.b.accept()!;
  const data = pseudoRandom(4 * 1024 * KiB, 9);
  const got: Uint8Array[] = [];
  let at = 0;
  let peak = 0;
  while (got.reduce((n, p) => n + p.length, 0) < data.length) {
    at = feed(s, data, at);
    w.pump();
    peak = Math.max(peak, w.a.retainedBytes);
    drainInto(t, got, w.now);
    w.now += 1;
  }
  assert.deepEqual(concat(got), data);
  assert.ok(peak <= 256 * KiB + 64 * KiB, `kept at most the limit and a frame, kept ${peak}`);
  w.advance(500); // the receiver's delayed Ack
  // What stays is at most the last Ack frame (an Ack alone is not acknowledged).
  assert.ok(w.a.retainedBytes <= 12, `everything acknowledged is forgotten: ${w.a.retainedBytes}`);
  assert.ok(w.b.retainedBytes <= 12, `${w.b.retainedBytes}`);

  // A peer that receives but never acknowledges (its Acks are lost): the sender stops at the
  // limit even though the stream window would allow more.
  const v = new ByteWire({ retainLimit: 256 * KiB, maxWindow: 2048 * KiB }, {
    initialWindow: 2048 * KiB,
  });
  const x = v.a.open(v.now);
  v.pump();
  const y = v.b.accept()!;
  v.pump();
  assert.ok(x.sendWindow >= 2048 * KiB);
  v.blackHole = true;
  feed(x, data, 0);
  v.pump();
  const sent = v.inFlight.ab.reduce((n, c) => n + c.length, 0);
  assert.ok(sent <= 256 * KiB + 64 * KiB + 1024, `sent ${sent} unacknowledged bytes`);
  assert.ok(x.queuedBytes > 1024 * KiB, "the rest waits, queued");
  assert.ok(y.receivedBytes === 0);
});

Deno.test("resumable core: a keepalive timeout or a lost transport detaches (streams kept); the session times nothing while detached", () => {
  const w = new ByteWire({ keepaliveIntervalMs: 1000, keepaliveTimeoutMs: 500 });
  const s = w.a.open(w.now);
  w.pump();
  w.blackHole = true;
  w.advance(1600, 50);
  assert.equal(w.detached.a.length, 1);
  assert.equal(w.detached.a[0].reason, "keepalive-timeout");
  assert.ok(w.a.isDetached && !w.a.isClosed && !s.released);
  assert.equal(w.a.pollTimeout(), null, "nothing timed while detached");
  assert.equal(w.a.pollTransmit(new Uint8Array(1024), w.now), 0, "nothing sent while detached");
  w.inFlight.ab.length = 0;
  w.inFlight.ba.length = 0;
  w.b.transportEof();
  w.advance(60_000, 1000);
  assert.ok(w.a.isDetached && w.b.isDetached && !s.released);
  w.resume();
  w.pump();
  const due = w.a.pollTimeout();
  assert.ok(due !== null && due <= w.now + 1000, "keepalive starts again");
  // A resumed session carries data again.
  s.queue(new Uint8Array([1, 2, 3]));
  w.pump();
  const t = w.b.accept()!;
  assert.equal(t.bufferedBytes, 3);
});

Deno.test("resumable core: a resume from an offset the session never sent, or already forgot, is refused", () => {
  const w = new ByteWire();
  const s = w.a.open(w.now);
  s.queue(new Uint8Array(1000));
  w.pump();
  w.advance(500);
  w.cut();
  const sent = w.a.retainedBytes; // acknowledged and forgotten: only what followed
  assert.equal(sent, 0);
  assert.match(w.a.resume(w.b.receivedOffset + 1, w.now)!, /this side kept/);
  assert.match(w.a.resume(w.b.receivedOffset - 1, w.now)!, /this side kept/);
  assert.match(w.a.resume(-1, w.now)!, /this side kept/);
  assert.ok(w.a.isDetached, "a refused resume changes nothing");
  assert.equal(w.a.resume(w.b.receivedOffset, w.now), null);
  assert.match(w.a.resume(w.b.receivedOffset, w.now)!, /not detached/);
});

Deno.test("resumable core: a session that went away ends on a lost transport instead of detaching; close while detached ends it", () => {
  const w = new ByteWire();
  w.a.open(w.now);
  w.pump();
  w.a.goAway();
  w.pump();
  w.a.transportEof();
  assert.ok(w.a.isClosed && !w.a.isDetached);

  const v = new ByteWire();
  const s = v.a.open(v.now);
  v.pump();
  v.a.transportEof();
  assert.ok(v.a.isDetached);
  let closed: SessionCloseInfo | null = null;
  // A fresh core to observe `closed`: close while detached ends at once, with nothing to flush.
  const c = new SessionCore({ client: true, resumable: true }, {
    now: 0,
    events: { closed: (i) => closed = i },
  });
  c.transportEof();
  assert.ok(c.isDetached);
  c.close(0, new Error("grace period over"));
  assert.ok(c.isDone, "no GoAway to wait for");
  assert.equal(closed!.reason, "local");
  v.a.close(v.now);
  assert.ok(s.released && s.readError !== null);
});

Deno.test("resumable core: an Ack beyond what was sent is a protocol error; a plain session refuses Ack frames", () => {
  const w = new ByteWire();
  w.pump();
  w.a.receive(encodeFrame(FrameType.Ack, 0, 0, 1_000_000), true, 0);
  assert.ok(w.a.isClosed);
  assert.match(w.a.closeInfo!.error!.message, /ack of 1000000 bytes/);

  const plain = new SessionCore({ client: true }, { now: 0 });
  plain.receive(encodeFrame(FrameType.Ack, 0, 0, 0), true, 0);
  assert.ok(plain.isClosed);
  assert.match(plain.closeInfo!.error!.message, /unknown type 4/);
});
