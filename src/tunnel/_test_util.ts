/**
 * Helpers for the tunnel tests: a fake clock that runs simulated time, session pairs over a
 * memory pipe on it, a relay that can inject raw bytes, readers of raw frames, and two session
 * cores joined by a simulated wire that can lose, delay and reorder frames.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { Conn } from "../io/conn.ts";
import type { TimerClock as Clock } from "../io/clock.ts";
import type { SessionOptions } from "./config.ts";
import { SessionCore } from "./core.ts";
import { Decoder } from "./decoder.ts";
import type { Frame } from "./frame.ts";
import { memoryPipe, type MemoryPipeOptions } from "../io/pipe.ts";
import { Session } from "./session.ts";

/**
 * A clock whose time moves only when told, or, under {@linkcode FakeClock.run}, whenever
 * nothing else can: a discrete-event simulation. Timers due at the same time fire in the order
 * they were set.
 */
export class FakeClock implements Clock {
  #now: number;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #nextId = 1;

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): number {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimer(id: number): void {
    this.#timers.delete(id);
  }

  /** Timers set and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Resolves `ms` of fake time from now. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(resolve, ms));
  }

  /**
   * One turn of the real event loop: every promise chain that can move without time (the
   * memory pipe, the sessions' loops) has moved when it resolves.
   */
  settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  /**
   * Resolves as `p` does, running fake time meanwhile: whenever nothing else can move, time
   * jumps to the next timer, which fires. Throws when `p` can never settle (nothing moves and
   * no timer is pending) or has not within `limitMs` of fake time.
   */
  async run<T>(p: Promise<T>, limitMs = 600_000): Promise<T> {
    let done = false;
    p.then(() => done = true, () => done = true);
    const limit = this.#now + limitMs;
    while (true) {
      await this.settle();
      if (done) return await p;
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.#timers) if (next === null || e[1].at < next[1].at) next = e;
      if (next === null) {
        throw new Error(
          `fake clock at ${this.#now} ms: the awaited promise can never settle (nothing runs and no timer is pending)`,
        );
      }
      const [id, t] = next;
      if (t.at > limit) {
        throw new Error(`fake clock: not settled within ${limitMs} ms of fake time`);
      }
      this.#timers.delete(id);
      if (t.at > this.#now) this.#now = t.at;
      t.fn();
    }
  }
}

/**
 * A test body run on simulated time (see {@linkcode FakeClock.run}): no real sleep, and a test
 * that would hang fails at once naming the fake time.
 */
export function simulated(
  fn: (clock: FakeClock) => Promise<void>,
  limitMs?: number,
): () => Promise<void> {
  return async () => {
    const clock = new FakeClock();
    await clock.run(fn(clock), limitMs);
  };
}

/** `Deno.test` of a body run on simulated time (see {@linkcode simulated}). */
export function simTest(name: string, fn: (clock: FakeClock) => Promise<void>): void {
  Deno.test(name, simulated(fn));
}

/** Two connected sessions and their transports. */
export interface Pair extends AsyncDisposable {
  client: Session;
  server: Session;
}

/** Options of the session pair helpers. */
export interface PairOptions {
  /** Options of the client session (besides `client` and `clock`). */
  client?: Partial<SessionOptions>;
  /** Options of the server session. */
  server?: Partial<SessionOptions>;
  /** The pipe between them (its clock is the pair's). */
  pipe?: MemoryPipeOptions;
}

/** A client and a server session over one memory pipe, on `clock`. */
export function sessionPair(clock: Clock, options: PairOptions = {}): Pair {
  const [a, b] = memoryPipe({ ...options.pipe, clock });
  const client = new Session(a, { clock, ...options.client, client: true });
  const server = new Session(b, { clock, ...options.server, client: false });
  return {
    client,
    server,
    async [Symbol.asyncDispose]() {
      await Promise.all([client.close(), server.close()]);
    },
  };
}

/** The header of a frame seen on the wire (payloads are not kept). */
export interface SeenFrame {
  type: number;
  flags: number;
  streamId: number;
  length: number;
}

/**
 * Wraps `conn` so every frame read through it is recorded (headers only) in `frames`: what the
 * session on this end received from its peer, in order.
 */
export function tapReads(conn: Conn): { conn: Conn; frames: SeenFrame[] } {
  const frames: SeenFrame[] = [];
  const d = new Decoder({ maxFrameSize: 0xffffffff });
  const carry = { frame: null };
  return {
    frames,
    conn: {
      async read(p: Uint8Array): Promise<number | null> {
        const n = await conn.read(p);
        if (n !== null && n > 0) {
          d.push(p.slice(0, n));
          for (const f of wholeFrames(d, carry)) {
            frames.push({ type: f.type, flags: f.flags, streamId: f.streamId, length: f.length });
          }
        }
        return n;
      },
      write: (p) => conn.write(p),
      closeWrite: () => conn.closeWrite(),
      close: () => conn.close(),
    },
  };
}

/**
 * Like {@linkcode sessionPair}, and `toClient` records every frame the client session read from
 * the server (window updates, ping answers, ...).
 */
export function tappedSessionPair(
  clock: Clock,
  options: PairOptions = {},
): Pair & { toClient: SeenFrame[] } {
  const [a, b] = memoryPipe({ ...options.pipe, clock });
  const tap = tapReads(a);
  const client = new Session(tap.conn, { clock, ...options.client, client: true });
  const server = new Session(b, { clock, ...options.server, client: false });
  return {
    client,
    server,
    toClient: tap.frames,
    async [Symbol.asyncDispose]() {
      await Promise.all([client.close(), server.close()]);
    },
  };
}

/**
 * Polls `cond` every fake millisecond until it holds; throws naming `what` when it has not
 * within `timeoutMs` of fake time. For waiting on something that happens asynchronously.
 */
export async function waitFor(
  clock: FakeClock,
  cond: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = clock.now() + timeoutMs;
  while (!cond()) {
    if (clock.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await clock.sleep(1);
  }
}

/** Reads exactly `n` bytes from `conn` (throws at end of stream). */
export async function readExactly(conn: Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) throw new Error(`end of stream after ${got} of ${n} bytes`);
    got += r;
  }
  return out;
}

/** Reads `conn` to end of stream. */
export async function readAll(conn: Conn, bufSize = 64 * 1024): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(bufSize);
  let total = 0;
  while (true) {
    const n = await conn.read(buf);
    if (n === null) break;
    parts.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Whether `a` and `b` hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Deterministic pseudo-random bytes. */
export function pseudoRandom(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Reads raw frames from `conn` until `stop` returns true or end of stream. */
export async function readFramesUntil(
  conn: Conn,
  stop: (f: Frame) => boolean,
): Promise<Frame[]> {
  const d = new Decoder();
  const carry = { frame: null };
  const buf = new Uint8Array(64 * 1024);
  const out: Frame[] = [];
  while (true) {
    const n = await conn.read(buf);
    if (n === null) return out;
    d.push(buf.subarray(0, n));
    for (const f of wholeFrames(d, carry)) {
      out.push({ ...f, owned: true });
      if (stop(f)) return out;
    }
  }
}

/**
 * Two sessions joined through a relay that copies bytes both ways and lets the test inject
 * raw bytes towards the server.
 */
export function relayedPair(clock: Clock, options: PairOptions = {}): Pair & {
  injectToServer(bytes: Uint8Array): Promise<void>;
} {
  const [c, r1] = memoryPipe({ ...options.pipe, clock });
  const [r2, s] = memoryPipe({ ...options.pipe, clock });
  const client = new Session(c, { clock, ...options.client, client: true });
  const server = new Session(s, { clock, ...options.server, client: false });
  const pump = async (from: Conn, to: Conn) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        await to.write(buf.subarray(0, n));
      }
    } catch {
      // the other side closed
    }
    to.close();
    from.close();
  };
  const pumps = Promise.all([pump(r1, r2), pump(r2, r1)]);
  return {
    client,
    server,
    async injectToServer(bytes: Uint8Array) {
      await r2.write(bytes);
    },
    async [Symbol.asyncDispose]() {
      await Promise.all([client.close(), server.close()]);
      await pumps;
    },
  };
}

/**
 * What a hashicorp/yamux client (default config: 256 KiB window) puts on the wire for: open a
 * stream, write "hello", ping, close the stream, close the session. Written by hand (Go is
 * not available here to capture them) from hashicorp/yamux's spec.md
 * (https://github.com/hashicorp/yamux/blob/master/spec.md; "Framing": Version 8 bits, always 0; Type 8 bits, 0x0 Data, 0x1
 * Window Update, 0x2 Ping, 0x3 Go Away; Flags 16 bits, 0x1 SYN, 0x2 ACK, 0x4 FIN, 0x8 RST;
 * StreamID 32 bits, client ids odd, 0 for the session; Length 32 bits; all fields big endian;
 * "Opening a stream": a data or window update frame with SYN; "Closing a stream": FIN on a data
 * or window update frame; Ping: SYN to ask, opaque value echoed; Go Away code 0x0 normal), and
 * from what its stream.go sends: sendWindowUpdate() on open, a WindowUpdate with SYN and delta
 * MaxStreamWindowSize - recvWindow = 0; Write(), a Data frame (no flags once SYN went out);
 * Close(), sendClose(): a WindowUpdate with FIN and length 0. Not produced by this project's
 * encoder.
 */
export const YAMUX_CLIENT_VECTOR: { name: string; bytes: number[] }[] = [
  // type 1 Window Update, flags 0x0001 SYN, stream 1, length (window delta) 0
  { name: "open stream 1", bytes: [0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0] },
  // type 0 Data, no flags, stream 1, length 5, then the payload
  {
    name: "data on stream 1",
    bytes: [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 0x68, 0x65, 0x6c, 0x6c, 0x6f],
  },
  // type 2 Ping, flags 0x0001 SYN, stream 0, opaque 0x00000102 (its 259th ping)
  { name: "ping", bytes: [0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2] },
  // type 1 Window Update, flags 0x0004 FIN, stream 1, length 0
  { name: "close stream 1", bytes: [0, 1, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0] },
  // type 3 Go Away, no flags, stream 0, code 0 (normal termination)
  { name: "go away", bytes: [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
];

/**
 * The frames `decoder` yields now, with the pieces of a Data frame that spans chunks joined
 * into one frame again (`carry` holds a frame still incomplete at the end of a chunk).
 */
export function wholeFrames(
  decoder: Iterable<Frame>,
  carry: { frame: Frame | null },
): Frame[] {
  const out: Frame[] = [];
  for (const f of decoder) {
    const prev = carry.frame;
    const joined: Frame = prev === null ? { ...f, data: f.data.slice() } : {
      ...prev,
      flags: prev.flags | f.flags,
      length: prev.length + f.length,
      data: new Uint8Array([...prev.data, ...f.data]),
    };
    if (f.partial) carry.frame = joined;
    else {
      carry.frame = null;
      delete joined.partial;
      out.push(joined);
    }
  }
  return out;
}

/** A side of a {@linkcode CoreWire}: `a` is the client, `b` the server. */
export type Side = "a" | "b";

/** A frame put on a {@linkcode CoreWire}, with when it was sent and (unless lost) arrives. */
export interface WireFrame {
  from: Side;
  frame: Frame;
  sentAt: number;
  /** Arrival time, or null when the frame was lost. */
  at: number | null;
}

/** Options of a {@linkcode CoreWire}. */
export interface CoreWireOptions {
  /** Options of the client core `a` (besides `client`). */
  a?: Partial<SessionOptions>;
  /** Options of the server core `b`. */
  b?: Partial<SessionOptions>;
  /** One-way delay of every frame, ms. Default 0. */
  delayMs?: number;
  /** Bytes one `pollTransmit` may fill (one transport write). Default 256 KiB. */
  batchBytes?: number;
}

/**
 * Two session cores (no driver, no promises, no real time) joined by a simulated wire: what one
 * side transmits is decoded into frames, each arriving `delayMs` later unless `tamper` says
 * otherwise: it returns a frame's arrival time (earlier than another's to reorder them, later
 * to delay it) or null to lose it. Time is `now`, moved by {@linkcode CoreWire.runUntil}.
 */
export class CoreWire {
  /** The time on the wire, ms. */
  now = 0;
  readonly a: SessionCore;
  readonly b: SessionCore;
  delayMs: number;
  /** Decides a frame's arrival time (`at` is the default), or null to lose it. */
  tamper: ((w: WireFrame, at: number) => number | null) | null = null;
  /** Every frame put on the wire, in sending order. */
  readonly log: WireFrame[] = [];
  /** Sides whose transport write hangs: what they poll is never reported written. */
  readonly stalled = new Set<Side>();
  #inFlight: WireFrame[] = [];
  #stuck = new Set<Side>();
  #buf: Uint8Array;
  #decoders = {
    a: new Decoder({ maxFrameSize: 0xffffffff }),
    b: new Decoder({ maxFrameSize: 0xffffffff }),
  };
  #carry = { a: { frame: null as Frame | null }, b: { frame: null as Frame | null } };

  constructor(options: CoreWireOptions = {}) {
    this.a = new SessionCore({ ...options.a, client: true }, { now: 0 });
    this.b = new SessionCore({ ...options.b, client: false }, { now: 0 });
    this.delayMs = options.delayMs ?? 0;
    this.#buf = new Uint8Array(options.batchBytes ?? 256 * 1024);
  }

  /** The core of `side`. */
  core(side: Side): SessionCore {
    return side === "a" ? this.a : this.b;
  }

  /** Frames sent and not yet arrived (lost ones excluded). */
  get inFlight(): readonly WireFrame[] {
    return this.#inFlight;
  }

  /** Puts on the wire what both sides have to write now. */
  transmit(): void {
    for (const side of ["a", "b"] as const) {
      const core = this.core(side);
      while (!this.#stuck.has(side)) {
        const n = core.pollTransmit(this.#buf, this.now);
        if (n === 0) break;
        if (this.stalled.has(side)) {
          this.#stuck.add(side); // handed to a transport write that never finishes
          break;
        }
        core.transmitted(n);
        const d = this.#decoders[side];
        d.push(this.#buf.slice(0, n));
        for (const f of wholeFrames(d, this.#carry[side])) this.#send(side, { ...f, owned: true });
      }
    }
  }

  #send(from: Side, frame: Frame): void {
    const w: WireFrame = { from, frame, sentAt: this.now, at: this.now + this.delayMs };
    if (this.tamper !== null) w.at = this.tamper(w, w.at!);
    this.log.push(w);
    if (w.at === null) return;
    // In arrival order; frames arriving at the same time keep their sending order.
    let i = this.#inFlight.length;
    while (i > 0 && this.#inFlight[i - 1].at! > w.at) i--;
    this.#inFlight.splice(i, 0, w);
  }

  /**
   * Runs the wire until `t`: puts frames on it, delivers them as they arrive and fires the
   * cores' deadlines, in time order.
   */
  runUntil(t: number): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.transmit();
      let next = this.#inFlight[0]?.at ?? Infinity;
      for (const c of [this.a, this.b]) next = Math.min(next, c.pollTimeout() ?? Infinity);
      if (next > t) {
        if (t > this.now) this.now = t;
        this.transmit();
        return;
      }
      if (next > this.now) this.now = next;
      while (this.#inFlight.length > 0 && this.#inFlight[0].at! <= this.now) {
        const w = this.#inFlight.shift()!;
        this.core(w.from === "a" ? "b" : "a").handleFrame(w.frame, this.now);
      }
      for (const c of [this.a, this.b]) {
        const at = c.pollTimeout();
        if (at !== null && at <= this.now) c.handleTimeout(this.now);
      }
    }
    throw new Error("core wire: no progress");
  }

  /** Runs `ms` more. */
  run(ms: number): void {
    this.runUntil(this.now + ms);
  }
}
