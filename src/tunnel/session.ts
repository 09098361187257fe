/**
 * A yamux session over one byte-stream transport (a port-forward WebSocket): many
 * {@linkcode Stream}s, each flow-controlled with its own credit window, sharing one writer
 * that interleaves frames fairly and sends control frames (window updates, ping answers,
 * resets) ahead of bulk data.
 *
 * This is the driver: the protocol is {@linkcode SessionCore} (`core.ts`), which does no I/O
 * and reads no clock. The driver owns the transport (a read loop feeding the core, a writer
 * that gathers the core's frames into one transport write) and the {@linkcode Clock} (one timer,
 * armed for the core's next deadline), and turns the core's events into resolved promises.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import { systemClock, type TimerClock as Clock } from "../io/clock.ts";
import type { SessionOptions } from "./config.ts";
import { type CorePolicy, type SessionCloseInfo, SessionCore, type SessionStats } from "./core.ts";
import { GoAwayCode } from "./errors.ts";
import type { StreamState } from "./stream_state.ts";
import { Stream, StreamDriver } from "./stream.ts";

export type { SessionCloseInfo, SessionStats } from "./core.ts";

/**
 * What a server can decide about the streams its peer opens and the bytes they bring: limits
 * beyond the yamux windows, so that many streams cannot add up to more memory than it has. Every
 * member is optional; a session without a policy buffers whatever the windows allow.
 */
export interface SessionPolicy {
  /**
   * Bytes an accepted stream may buffer until the application lifts or changes the cap with
   * {@linkcode Stream.limitReceive}; more resets the stream. Default: no cap (the window).
   */
  inboundReceiveLimit?: number;
  /**
   * `n` bytes arrived on `stream` within its window. Return null to buffer them, or why not:
   * they are dropped and the stream is reset (the session goes on).
   */
  admitReceive?(stream: Stream, n: number): string | null;
  /** The session's buffered receive bytes changed by `n` (negative when read or dropped). */
  onBuffered?(n: number): void;
  /** Whether auto-tuning may grow `stream`'s receive window by `n` bytes. */
  admitWindowGrowth?(stream: Stream, n: number): boolean;
  /** `stream` left the session (finished, reset, or the session ended); called once per stream. */
  onRelease?(stream: Stream): void;
}

interface _PendingPing {
  resolve: (rtt: number) => void;
  reject: (e: Error) => void;
}

const EMPTY = new Uint8Array(0);

/** Size of the reused buffer frames are gathered in before one transport write. */
const BATCH_BYTES = 256 * 1024;
/**
 * A resumable session's batches are cut one after another from 1 MiB arenas, because the core
 * keeps each large batch until the peer acknowledges it (no copy): the next batch goes after
 * it. An arena whose batches are all acknowledged, and that is no longer cut from, is spared
 * for any session of the process to reuse (8 MiB at most), so bulk sending allocates nothing.
 */
const ARENA_BYTES = 1024 * 1024;
/** A batch is not started in less room than this; the next arena is. */
const MIN_BATCH_BYTES = 64 * 1024;
const sparedArenas: Uint8Array[] = [];
const MAX_SPARED_ARENAS = 8;

class _Arena {
  readonly buf: Uint8Array;
  /** Where the next batch starts. */
  pos = 0;
  /** Batches kept by the core and not yet given back. */
  kept = 0;
  /** No more batches are cut from it. */
  retired = false;
  constructor() {
    this.buf = sparedArenas.pop() ?? new Uint8Array(ARENA_BYTES);
  }
  /** Spares it once nothing in it is kept and nothing more is cut from it. */
  maybeSpare(): void {
    if (this.retired && this.kept === 0 && sparedArenas.length < MAX_SPARED_ARENAS) {
      sparedArenas.push(this.buf);
    }
  }
}
/** Transport read buffer. */
const READ_BYTES = 256 * 1024;

/**
 * A multiplexed session. The transport must not keep a buffer passed to `write` after the
 * write resolved (as with `Deno.Conn`). Reading starts at once; a ping is sent at start to
 * learn the round-trip time for window tuning. Never throws out of its own loops: every
 * failure ends the session and resolves {@linkcode Session.closed}. Time comes from
 * `options.clock` (the system clock by default).
 *
 * @example
 * ```ts
 * import { memoryPipe } from "../io/pipe.ts";
 * import { Session } from "./session.ts";
 * const [a, b] = memoryPipe();
 * await using client = new Session(a, { client: true });
 * await using server = new Session(b, { client: false });
 * const s = await client.open();
 * await s.write(new Uint8Array([1, 2, 3]));
 * const t = (await server.accept())!;
 * const buf = new Uint8Array(3);
 * if ((await t.read(buf)) !== 3) throw new Error("unexpected");
 * const rtt = await client.ping();
 * if (rtt < 0) throw new Error("unexpected");
 * ```
 */
export class Session implements AsyncDisposable {
  /** Resolves (never rejects) once the session has ended and the transport is closed. */
  readonly closed: Promise<SessionCloseInfo>;
  /** Counters; a live object. */
  readonly stats: SessionStats;
  /**
   * Called when a resumable session lost its transport and waits, streams intact, for
   * {@linkcode Session.attach} (or `close`). The old transport is already closed.
   */
  onDetached: ((info: SessionCloseInfo) => void) | null = null;

  #transport: Conn;
  readonly #resumable: boolean;
  /** Which transport the loops serve: a loop of an older one stops without a word. */
  #gen = 0;
  #clock: Clock;
  /** What the session's stream handles share (the clock, their states' waker). */
  #streamDriver: StreamDriver;
  #core: SessionCore;
  #acceptWaiters: (() => void)[] = [];
  #pings = new Map<number, _PendingPing>();

  /** The batch with the transport's headroom in front (see `Conn.writeHeadroom`). */
  #batchBuf: Uint8Array;
  #headroom: number;
  #batch: Uint8Array;
  #writerWake: (() => void) | null = null;
  #writerIdle = true;
  #flushWaiters: (() => void)[] = [];

  /** Resumable: the arena batches are cut from, and which arena each kept batch is in. */
  #arena: _Arena | null = null;
  #arenas = new Map<ArrayBufferLike, _Arena>();

  /** The one timer, armed for the core's earliest deadline (`#timerAt`), or undefined. */
  #timer: number | undefined;
  #timerAt = Infinity;
  #resolveClosed!: (info: SessionCloseInfo) => void;

  /** `policy` limits what the peer's streams may hold (see {@linkcode SessionPolicy}). */
  constructor(transport: Conn, options: SessionOptions, policy: SessionPolicy = {}) {
    this.#transport = transport;
    this.#clock = options.clock ?? systemClock;
    this.#streamDriver = new StreamDriver(this.#clock);
    this.#headroom = 0;
    this.#batchBuf = this.#batch = EMPTY;
    this.#resumable = options.resumable ?? false;
    this.#useTransport(transport);
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#core = new SessionCore(options, {
      now: this.#clock.now(),
      policy: this.#corePolicy(policy),
      events: {
        transmitReady: () => this.#wakeWriter(),
        acceptReady: () => this.#wakeAcceptors(),
        pong: (opaque, rtt) => {
          const p = this.#pings.get(opaque);
          if (p === undefined) return;
          this.#pings.delete(opaque);
          p.resolve(rtt);
        },
        timeoutChanged: () => this.#armTimer(),
        ending: (err) => {
          const pings = [...this.#pings.values()];
          this.#pings.clear();
          for (const p of pings) p.reject(err);
        },
        closed: (info) => this.#onClosed(info),
        detached: (info) => this.#onDetached(info),
        released: (view) => {
          const arena = this.#arenas.get(view.buffer);
          if (arena === undefined) return;
          arena.kept--;
          if (arena.kept === 0 && arena.retired) {
            this.#arenas.delete(view.buffer);
            arena.maybeSpare();
          }
        },
      },
    });
    this.stats = this.#core.stats;
    this.#writeLoop(this.#gen);
    this.#readLoop(this.#gen);
    this.#armTimer();
  }

  /** True when the session was made resumable (`options.resumable`). */
  get resumable(): boolean {
    return this.#core.options.resumable;
  }

  /** True while a resumable session has lost its transport and waits for `attach`. */
  get isDetached(): boolean {
    return this.#core.isDetached;
  }

  /** How the transport was lost, while detached. */
  get detachInfo(): SessionCloseInfo | null {
    return this.#core.detachInfo;
  }

  /** Bytes of the peer's stream received, over every transport (what a resume tells the peer). */
  get receivedOffset(): number {
    return this.#core.receivedOffset;
  }

  /** Bytes kept until the peer acknowledges them (0 unless resumable). */
  get retainedBytes(): number {
    return this.#core.retainedBytes;
  }

  /**
   * Bytes held in the session's streams: received and not yet read, plus queued to send and not
   * yet framed (what a detached session keeps besides {@linkcode Session.retainedBytes}).
   */
  get heldBytes(): number {
    return this.#core.stats.bufferedBytes + this.#core.queuedBytes;
  }

  /**
   * Why the session could not go on with a peer that has received `peerReceived` bytes of this
   * side's stream, or null when it could.
   */
  resumeProblem(peerReceived: number): string | null {
    return this.#core.resumeProblem(peerReceived);
  }

  /**
   * Resumes a detached session over `transport`, whose far end has received `peerReceived`
   * bytes of this side's stream (from the handshake, `hello.ts`). Throws when the session
   * cannot go on from there (then close it); the transport is then not used.
   */
  attach(transport: Conn, peerReceived: number): void {
    const err = this.#core.resume(peerReceived, this.#clock.now());
    if (err !== null) throw new Error(`resume: ${err}`);
    this.#transport = transport;
    this.#useTransport(transport);
    const gen = ++this.#gen;
    this.#writeLoop(gen);
    this.#readLoop(gen);
    this.#armTimer();
  }

  /**
   * Detaches a resumable session from its transport now, as if it were lost (another transport
   * takes the session over, or the path is known to be gone). Returns false when the session
   * is not resumable, or is ending or going away.
   */
  detach(reason: Error): boolean {
    return this.#core.detach(reason);
  }

  /** True once the session has ended or is ending (not merely going away). */
  get isClosed(): boolean {
    return this.#core.isClosed;
  }

  /** True once a GoAway was sent or received: no new streams either way. */
  get isGoingAway(): boolean {
    return this.#core.isGoingAway;
  }

  /** Streams in the session's table (open, half-closed or waiting to be accepted). */
  get numStreams(): number {
    return this.#core.numStreams;
  }

  /**
   * Opens a stream: sends SYN and resolves at once (data may follow before the ACK). Rejects
   * with {@linkcode SessionClosedError} when the session is closed or going away, and with
   * RangeError when `maxStreams` streams are open.
   */
  open(
    options: { signal?: AbortSignal; initial?: Uint8Array; closeWrite?: boolean } = {},
  ): Promise<Stream> {
    try {
      options.signal?.throwIfAborted();
      return Promise.resolve(this.#handleOf(this.#core.open(this.#clock.now(), options)));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The next stream the peer opened, or null once the session is closed or going away. */
  async accept(): Promise<Stream | null> {
    const core = this.#core;
    while (true) {
      const s = core.accept();
      if (s !== null) return this.#handleOf(s);
      if (core.isClosed || core.isGoingAway) return null;
      await new Promise<void>((resolve) => this.#acceptWaiters.push(resolve));
    }
  }

  /** Accepts streams until the session closes or goes away. */
  [Symbol.asyncIterator](): AsyncIterator<Stream> {
    return {
      next: async (): Promise<IteratorResult<Stream>> => {
        const s = await this.accept();
        return s === null ? { done: true, value: undefined } : { done: false, value: s };
      },
    };
  }

  /** Sends a ping and resolves with the round trip in ms. Rejects when the session ends. */
  ping(options: { signal?: AbortSignal } = {}): Promise<number> {
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    let opaque: number;
    try {
      opaque = this.#core.ping(this.#clock.now());
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => {
        this.#pings.delete(opaque);
        this.#core.cancelPing(opaque);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pings.set(opaque, {
        resolve: (rtt) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(rtt);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
    });
  }

  /**
   * Sends GoAway: from now on no new streams either way; existing streams finish, and the
   * session ends (reason `local`) when the last one is done. Resolves once GoAway is written.
   */
  async goAway(code: number = GoAwayCode.Normal): Promise<void> {
    const core = this.#core;
    if (core.isClosed || core.goAwaySent !== null) return;
    core.goAway(code);
    await this.#flush();
  }

  /**
   * Ends the session at once: every stream ends with {@linkcode SessionClosedError}, a GoAway
   * is sent if the transport takes it quickly, and the transport is closed. Resolves when
   * {@linkcode Session.closed} has.
   */
  async close(reason?: Error): Promise<void> {
    this.#core.close(this.#clock.now(), reason);
    await this.closed;
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- the core's side ---

  #handleOf(s: StreamState): Stream {
    return (s.handle as Stream | undefined) ??
      (s.handle = new Stream(s, this.#streamDriver)) as Stream;
  }

  /** The application's policy, over the streams' handles, as the core's. */
  #corePolicy(policy: SessionPolicy): CorePolicy {
    const handleOf = (s: StreamState) => this.#handleOf(s);
    return {
      get inboundReceiveLimit() {
        return policy.inboundReceiveLimit;
      },
      admitReceive: policy.admitReceive && ((s, n) => policy.admitReceive!(handleOf(s), n)),
      onBuffered: policy.onBuffered && ((n) => policy.onBuffered!(n)),
      admitWindowGrowth: policy.admitWindowGrowth &&
        ((s, n) => policy.admitWindowGrowth!(handleOf(s), n)),
      onRelease: policy.onRelease && ((s) => policy.onRelease!(handleOf(s))),
    };
  }

  /** A fresh batch buffer (a write on the old transport may still hold the old one). */
  #useTransport(transport: Conn): void {
    this.#headroom = transport.writeWithHeadroom ? transport.writeHeadroom ?? 0 : 0;
    if (!this.#resumable) {
      this.#batchBuf = new Uint8Array(this.#headroom + BATCH_BYTES);
      this.#batch = this.#batchBuf.subarray(this.#headroom);
      return;
    }
    this.#retireArena();
    this.#cutBatch();
  }

  /** The next batch of a resumable session: after the last kept one, or in a new arena. */
  #cutBatch(): void {
    let a = this.#arena;
    const head = this.#headroom;
    if (a === null || ARENA_BYTES - a.pos - head < MIN_BATCH_BYTES) {
      this.#retireArena();
      a = this.#arena = new _Arena();
      this.#arenas.set(a.buf.buffer, a);
    }
    const end = Math.min(ARENA_BYTES, a.pos + head + BATCH_BYTES);
    this.#batchBuf = a.buf.subarray(a.pos, end);
    this.#batch = this.#batchBuf.subarray(head);
  }

  /** The core kept the last batch (`len` bytes): the next one starts after it. */
  #batchKept(len: number): void {
    const a = this.#arena!;
    a.kept++;
    a.pos += this.#headroom + len;
    this.#cutBatch();
  }

  #retireArena(): void {
    const a = this.#arena;
    if (a === null) return;
    this.#arena = null;
    a.retired = true;
    if (a.kept === 0) {
      this.#arenas.delete(a.buf.buffer);
      a.maybeSpare();
    }
  }

  #onDetached(info: SessionCloseInfo): void {
    this.#gen++;
    try {
      this.#transport.close();
    } catch {
      // already closed
    }
    this.#wakeWriter();
    try {
      this.onDetached?.(info);
    } catch {
      // the owner's callback must not break the session
    }
  }

  #onClosed(info: SessionCloseInfo): void {
    this.#retireArena();
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = -Infinity; // never armed again
    try {
      this.#transport.close();
    } catch {
      // already closed
    }
    this.#wakeWriter();
    this.#wakeAcceptors();
    this.#resolveClosed(info);
  }

  /**
   * Arms the timer for the core's next deadline if that is earlier than the armed one. A
   * deadline that moved later lets the timer fire early; it then re-arms for the new one.
   */
  #armTimer(): void {
    const at = this.#core.pollTimeout();
    if (at === null || at >= this.#timerAt) return;
    const clock = this.#clock;
    if (this.#timer !== undefined) clock.clearTimer(this.#timer);
    this.#timerAt = at;
    this.#timer = clock.setTimer(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#core.handleTimeout(clock.now());
      this.#armTimer();
    }, Math.max(0, at - clock.now()));
  }

  #wakeAcceptors(): void {
    const ws = this.#acceptWaiters;
    this.#acceptWaiters = [];
    for (const w of ws) w();
  }

  // --- writer ---

  #wakeWriter(): void {
    const w = this.#writerWake;
    if (w) {
      this.#writerWake = null;
      w();
    }
  }

  /** Resolves when every queued frame has been written (or the writer stopped). */
  #flush(): Promise<void> {
    if (this.#writerIdle && !this.#core.wantsTransmit) return Promise.resolve();
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  #flushed(): void {
    this.#writerIdle = true;
    const ws = this.#flushWaiters;
    this.#flushWaiters = [];
    for (const w of ws) w();
  }

  async #writeLoop(gen: number): Promise<void> {
    const core = this.#core;
    const clock = this.#clock;
    const transport = this.#transport;
    const head = this.#headroom;
    try {
      while (!core.isDone && gen === this.#gen) {
        const batch = this.#batch;
        const batchBuf = this.#batchBuf;
        const len = core.pollTransmit(batch, clock.now(), true);
        // Kept until acknowledged (resumable): the next batch goes after it.
        if (core.bufferKept) this.#batchKept(len);
        if (len === 0) {
          this.#flushed();
          if (core.isDone) break;
          await new Promise<void>((resolve) => this.#writerWake = resolve);
          continue;
        }
        this.#writerIdle = false;
        await transportWrite(transport, batch.subarray(0, len), batchBuf, head);
        if (gen !== this.#gen) return;
        core.transmitted(len);
      }
    } catch (e) {
      if (gen === this.#gen) core.transportError(asError(e));
    } finally {
      if (gen === this.#gen) this.#flushed();
    }
  }

  // --- reader ---

  async #readLoop(gen: number): Promise<void> {
    // A transport that hands out its own buffers (a WebSocket's messages) is read without a
    // copy, and payloads stay views of them (`Decoder.push`).
    const transport = this.#transport;
    const core = this.#core;
    const clock = this.#clock;
    const owned = transport.readChunk !== undefined;
    const buf = owned ? EMPTY : new Uint8Array(READ_BYTES);
    while (!core.isClosed && gen === this.#gen) {
      let chunk: Uint8Array | null;
      try {
        if (owned) chunk = await transport.readChunk!(READ_BYTES);
        else {
          const n = await transport.read(buf);
          chunk = n === null ? null : buf.subarray(0, n);
        }
      } catch (e) {
        if (gen === this.#gen) core.transportError(asError(e));
        return;
      }
      if (core.isClosed || gen !== this.#gen) return;
      if (chunk === null) {
        core.transportEof();
        return;
      }
      core.receive(chunk, owned, clock.now());
    }
  }
}

/**
 * Writes `buf` (a view at the start of `batch`, after `head` bytes of headroom in `batchBuf`).
 * With headroom the transport writes straight from the batch (one whole write; if it takes
 * less, the rest goes by plain `write`, as the bytes in front are payload then).
 */
async function transportWrite(
  transport: Conn,
  buf: Uint8Array,
  batchBuf: Uint8Array,
  head: number,
): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    off += await (off === 0 && head > 0
      ? transport.writeWithHeadroom!(batchBuf.subarray(0, head + buf.length))
      : transport.write(buf.subarray(off)));
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
