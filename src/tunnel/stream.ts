/**
 * One multiplexed stream of a {@linkcode Session}: a {@linkcode Conn} with per-stream credit
 * flow control in both directions. The receive side buffers at most the window it has
 * advertised; the send side waits for credit before it queues bytes, so neither side grows
 * memory without bound.
 *
 * @module
 */
import type { Conn } from "../stack/dialer.ts";
import type { ResolvedSessionOptions } from "./config.ts";
import { ProtocolError, StreamResetError } from "./errors.ts";
import { Flag, type Frame, FrameType, SPEC_INITIAL_WINDOW } from "./frame.ts";

/**
 * What a stream needs from its session. Internal: implemented by {@linkcode Session}.
 * @internal
 */
export interface StreamHost {
  /** The session's options, defaults filled in. */
  readonly options: ResolvedSessionOptions;
  /** Queues a header-only frame ahead of data. */
  sendControl(type: FrameType, flags: number, streamId: number, length: number): void;
  /** The stream has queued outgoing chunks. */
  scheduleData(stream: Stream): void;
  /** The stream is finished and leaves the session's table. */
  release(stream: Stream): void;
  /** Round-trip estimate used by window auto-tuning, ms. */
  rttEstimateMs(): number;
  /** Adds `n` (may be negative) to the session's count of buffered receive bytes. */
  addBuffered(n: number): void;
  /**
   * `n` bytes arrived within the stream's window: null to buffer them, or why they may not be
   * (a receive budget is spent), and the stream is reset instead.
   */
  admitReceive(stream: Stream, n: number): string | null;
  /** Whether the stream's receive window may grow by `n` bytes (auto-tuning). */
  admitWindowGrowth(stream: Stream, n: number): boolean;
}

/**
 * A piece of outgoing data waiting for the session writer. Internal.
 * @internal
 */
export interface OutChunk {
  /** Bytes to send (a view of the caller's buffer; the caller waits until it is copied). */
  data: Uint8Array;
  /** Bytes of `data` already copied into a frame. */
  off: number;
  /** Send FIN with the last byte (or alone, when `data` is empty). */
  fin: boolean;
  /** Called once the whole chunk has been copied out. */
  resolve?: () => void;
  /** Called if the chunk will never be sent. */
  reject?: (e: Error) => void;
}

const EMPTY = new Uint8Array(0);
const U32_MAX = 0xffffffff;

/**
 * A multiplexed stream. Get one from {@linkcode Session.open} or {@linkcode Session.accept};
 * the constructor is internal.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "./pipe.ts";
 * import { Session } from "./session.ts";
 * const [a, b] = memoryPipe();
 * await using client = new Session(a, { client: true });
 * await using server = new Session(b, { client: false });
 * const s = await client.open();
 * await s.write(new TextEncoder().encode("hello"));
 * await s.closeWrite();
 * const t = (await server.accept())!;
 * const buf = new Uint8Array(16);
 * const n = await t.read(buf);
 * if (new TextDecoder().decode(buf.subarray(0, n!)) !== "hello") throw new Error("unexpected");
 * if ((await t.read(buf)) !== null) throw new Error("expected end of stream");
 * t.close();
 * s.close();
 * ```
 */
export class Stream implements Conn {
  /** Stream id: odd when the client side opened it, even for the server side. */
  readonly id: number;
  #host: StreamHost;

  // Receive side.
  #chunks: Uint8Array[] = [];
  #chunkHead = 0;
  #chunkOff = 0;
  #buffered = 0;
  /** Credit the peer still has: bytes it may send before our next WindowUpdate. */
  #recvWindow = SPEC_INITIAL_WINDOW;
  /** Current window target; grows with auto-tuning. */
  #windowSize = SPEC_INITIAL_WINDOW;
  /** Bytes consumed (or discarded) since the last WindowUpdate. */
  #consumed = 0;
  #lastUpdateAt: number;
  #remoteFin = false;
  #readClosed = false;
  #readError: Error | null = null;
  #readWaiters: (() => void)[] = [];

  // Send side.
  #sendWindow = SPEC_INITIAL_WINDOW;
  #writeClosed = false;
  #finQueued = false;
  #writeError: Error | null = null;
  #windowWaiters: (() => void)[] = [];
  #writeChain: Promise<void> = Promise.resolve();

  #released = false;
  #established: boolean;
  /** Most bytes the stream may buffer, or null for its window; see `limitReceive`. */
  #receiveLimit: number | null = null;
  /** How much auto-tuning grew the receive window beyond its opening size. */
  #grown = 0;

  /** Outgoing chunks for the session writer. Internal. @internal */
  readonly _out: OutChunk[] = [];
  /** True while the stream sits in the session's ready list. Internal. @internal */
  _inReady = false;

  /** @internal Streams are made by {@linkcode Session}. */
  constructor(host: StreamHost, id: number, opener: boolean) {
    this.#host = host;
    this.id = id;
    this.#established = !opener;
    this.#lastUpdateAt = performance.now();
  }

  /** Bytes received and not yet read. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Current receive window (grows with auto-tuning up to `maxWindow`). */
  get receiveWindow(): number {
    return this.#windowSize;
  }

  /** Bytes this side may still send before the peer grants more. */
  get sendWindow(): number {
    return this.#sendWindow;
  }

  /** True once the peer acknowledged the stream (always true on the accepting side). */
  get established(): boolean {
    return this.#established;
  }

  /** True once the stream has left its session (both sides done, reset, or session closed). */
  get released(): boolean {
    return this.#released;
  }

  /** Bytes auto-tuning added to the receive window beyond its opening size. */
  get windowGrowth(): number {
    return this.#grown;
  }

  /**
   * Caps what the stream may buffer at `bytes`, below its window (null lifts the cap). The peer
   * is not told: data that would take the buffer past the cap resets the stream instead (as
   * does calling this with more than `bytes` already buffered). A server uses it to take only
   * the open request (and the little that may come with it) until it has answered: the yamux
   * window every stream starts with (256 KiB) is far more than a request needs.
   */
  limitReceive(bytes: number | null): void {
    this.#receiveLimit = bytes;
    if (bytes !== null && this.#buffered > bytes && !this.#released) {
      this.reset(`${this.#buffered} bytes buffered, more than the ${bytes} allowed now`);
    }
  }

  /**
   * Reads into `p`. Resolves with the count, or null after the peer's FIN once all data is
   * consumed (or after `close()`). Rejects with {@linkcode StreamResetError} after a reset and
   * with {@linkcode SessionClosedError} when the session ended before the peer's FIN.
   */
  async read(p: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.#readError) throw this.#readError;
      if (this.#buffered > 0) return this.#copyOut(p);
      if (this.#remoteFin || this.#readClosed) return null;
      if (p.length === 0) return 0;
      await new Promise<void>((resolve) => this.#readWaiters.push(resolve));
    }
  }

  /**
   * Like `read`, without the copy: resolves with the next received bytes (at most `max`) in a
   * buffer the caller now owns, or null after the peer's FIN once all data is consumed (or
   * after `close()`). Rejects as `read` does.
   */
  async readChunk(max: number): Promise<Uint8Array | null> {
    while (true) {
      if (this.#readError) throw this.#readError;
      if (this.#buffered > 0) return this.#takeChunk(max);
      if (this.#remoteFin || this.#readClosed) return null;
      if (max === 0) return EMPTY;
      await new Promise<void>((resolve) => this.#readWaiters.push(resolve));
    }
  }

  /**
   * Writes all of `p`, waiting for send window as needed; resolves with `p.length` once every
   * byte has been handed to the session writer (then `p` may be reused). Rejects with
   * {@linkcode StreamResetError} after a reset, {@linkcode SessionClosedError} when the session
   * ended, and `Deno.errors.BrokenPipe` after `closeWrite()`/`close()`.
   */
  async write(p: Uint8Array): Promise<number> {
    if (p.length === 0) {
      this.#checkWritable();
      return 0;
    }
    const prev = this.#writeChain;
    let release!: () => void;
    this.#writeChain = new Promise<void>((r) => release = r);
    try {
      await prev;
      return await this.#writeAll(p);
    } finally {
      release();
    }
  }

  async #writeAll(p: Uint8Array): Promise<number> {
    let off = 0;
    let last: OutChunk | null = null;
    while (off < p.length) {
      this.#checkWritable();
      if (this.#sendWindow === 0) {
        await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
        continue;
      }
      const n = Math.min(this.#sendWindow, p.length - off);
      this.#sendWindow -= n;
      last = { data: p.subarray(off, off + n), off: 0, fin: false };
      this._out.push(last);
      off += n;
      if (off < p.length) this.#host.scheduleData(this);
    }
    const chunk = last!;
    const done = new Promise<void>((resolve, reject) => {
      chunk.resolve = resolve;
      chunk.reject = reject;
    });
    this.#host.scheduleData(this);
    await done;
    return p.length;
  }

  /**
   * Queues `p` at once, before any other write, so it leaves in the same transport write as the
   * SYN: used by `Session.open({ initial })` to save a round trip. `p` must fit the initial send
   * window. @internal
   */
  _queueInitial(p: Uint8Array, fin = false): void {
    if (p.length > this.#sendWindow) {
      throw new RangeError("initial data larger than the send window");
    }
    this.#sendWindow -= p.length;
    if (fin) {
      // The whole request: FIN rides on the same frame, so nothing is written after the answer.
      this.#writeClosed = true;
      this.#finQueued = true;
    }
    if (p.length === 0 && !fin) return;
    this._out.push({ data: p, off: 0, fin });
    this.#host.scheduleData(this);
  }

  /** Sends FIN after the bytes already written: the peer reads end of stream. Idempotent. */
  async closeWrite(): Promise<void> {
    await this.#writeChain;
    if (this.#finQueued || this.#writeError) return;
    this.#writeClosed = true;
    const done = this.#queueFin();
    await done;
  }

  /**
   * Closes the stream: sends FIN if not yet sent and stops reading (buffered and later data is
   * discarded, with credit returned so the peer can finish). The stream leaves the session
   * once the peer's FIN has arrived too.
   */
  close(): void {
    if (!this.#readClosed) {
      this.#readClosed = true;
      if (this.#buffered > 0) {
        this.#host.addBuffered(-this.#buffered);
        this.#consumed += this.#buffered;
        this.#buffered = 0;
        this.#chunks = [];
        this.#chunkHead = 0;
        this.#chunkOff = 0;
        this.#maybeUpdateWindow();
      }
      this.#wakeReaders();
    }
    if (!this.#finQueued && !this.#writeError && !this.#released) {
      this.#writeClosed = true;
      this.#queueFin().catch(() => {});
      this.#wakeWindow();
    }
    this.#checkRelease();
  }

  /**
   * Aborts the stream both ways with RST; pending and later reads and writes reject (with
   * `reason` in the error's message, when given).
   */
  reset(reason?: string): void {
    if (this.#released) return;
    const why = reason === undefined ? "" : ` (${reason})`;
    this.#fail(new StreamResetError(`stream ${this.id}: reset locally${why}`), false);
    this.#host.sendControl(FrameType.WindowUpdate, Flag.RST, this.id, 0);
  }

  #queueFin(): Promise<void> {
    this.#finQueued = true;
    const chunk: OutChunk = { data: EMPTY, off: 0, fin: true };
    const done = new Promise<void>((resolve, reject) => {
      chunk.resolve = resolve;
      chunk.reject = reject;
    });
    this._out.push(chunk);
    this.#host.scheduleData(this);
    this.#checkRelease();
    return done;
  }

  #checkWritable(): void {
    if (this.#writeError) throw this.#writeError;
    if (this.#writeClosed) {
      throw new Deno.errors.BrokenPipe(`write stream ${this.id}: stream closed for writing`);
    }
  }

  #copyOut(p: Uint8Array): number {
    let n = 0;
    while (n < p.length && this.#chunkHead < this.#chunks.length) {
      const c = this.#chunks[this.#chunkHead];
      const take = Math.min(p.length - n, c.length - this.#chunkOff);
      p.set(
        this.#chunkOff === 0 && take === c.length
          ? c
          : c.subarray(this.#chunkOff, this.#chunkOff + take),
        n,
      );
      n += take;
      this.#chunkOff += take;
      if (this.#chunkOff === c.length) {
        this.#chunks[this.#chunkHead++] = EMPTY;
        this.#chunkOff = 0;
      }
    }
    this.#consumedOut(n);
    return n;
  }

  /** The next buffered bytes, at most `max`, as a view (the chunks are the stream's own). */
  #takeChunk(max: number): Uint8Array {
    const c = this.#chunks[this.#chunkHead];
    const take = Math.min(max, c.length - this.#chunkOff);
    const out = this.#chunkOff === 0 && take === c.length
      ? c
      : c.subarray(this.#chunkOff, this.#chunkOff + take);
    this.#chunkOff += take;
    if (this.#chunkOff === c.length) {
      this.#chunks[this.#chunkHead++] = EMPTY;
      this.#chunkOff = 0;
    }
    this.#consumedOut(take);
    return out;
  }

  /** `n` bytes left the receive buffer: compacts the chunk list, returns credit. */
  #consumedOut(n: number): void {
    if (this.#chunkHead === this.#chunks.length) {
      this.#chunks = [];
      this.#chunkHead = 0;
    } else if (this.#chunkHead > 64 && this.#chunkHead * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#chunkHead);
      this.#chunkHead = 0;
    }
    this.#buffered -= n;
    this.#host.addBuffered(-n);
    this.#consumed += n;
    this.#maybeUpdateWindow();
  }

  /** Sends a WindowUpdate once half the window is consumed; grows the window when fast. */
  #maybeUpdateWindow(): void {
    if (this.#remoteFin || this.#released) return;
    if (this.#consumed < this.#windowSize / 2) return;
    const now = performance.now();
    const max = this.#host.options.maxWindow;
    if (
      this.#windowSize < max && !this.#readClosed &&
      now - this.#lastUpdateAt < 2 * this.#host.rttEstimateMs()
    ) {
      const grow = Math.min(this.#windowSize * 2, max) - this.#windowSize;
      if (this.#host.admitWindowGrowth(this, grow)) {
        this.#windowSize += grow;
        this.#grown += grow;
      }
    }
    const delta = this.#windowSize - this.#recvWindow - this.#buffered;
    this.#consumed = 0;
    this.#lastUpdateAt = now;
    if (delta <= 0) return;
    this.#recvWindow += delta;
    this.#host.sendControl(FrameType.WindowUpdate, 0, this.id, delta);
  }

  #wakeReaders(): void {
    const ws = this.#readWaiters;
    if (ws.length === 0) return;
    this.#readWaiters = [];
    for (const w of ws) w();
  }

  #wakeWindow(): void {
    const ws = this.#windowWaiters;
    if (ws.length === 0) return;
    this.#windowWaiters = [];
    for (const w of ws) w();
  }

  #checkRelease(): void {
    if (this.#released) return;
    if (this.#finQueued && this.#remoteFin) {
      this.#released = true;
      this.#host.release(this);
    }
  }

  #fail(err: Error, keepReceived: boolean): void {
    if (!this.#writeError) this.#writeError = err;
    const out = this._out.splice(0);
    for (const c of out) c.reject?.(err);
    if (!(keepReceived && this.#remoteFin) && !this.#readError) {
      this.#readError = err;
      if (this.#buffered > 0) this.#host.addBuffered(-this.#buffered);
      this.#buffered = 0;
      this.#chunks = [];
      this.#chunkHead = 0;
      this.#chunkOff = 0;
    }
    this.#wakeReaders();
    this.#wakeWindow();
    if (!this.#released) {
      this.#released = true;
      this.#host.release(this);
    }
  }

  /** Sends the SYN (opener) or ACK (acceptor) with any window above the spec's. @internal */
  _sendOpenFlag(flag: number): void {
    const delta = this.#host.options.initialWindow - SPEC_INITIAL_WINDOW;
    this.#recvWindow += delta;
    this.#windowSize += delta;
    this.#host.sendControl(FrameType.WindowUpdate, flag, this.id, delta);
  }

  /** Handles an inbound Data frame. Throws {@linkcode ProtocolError}. @internal */
  _onData(f: Frame): void {
    const len = f.length;
    if (len === 0) return;
    if (this.#remoteFin) throw new ProtocolError(`stream ${this.id}: data after FIN`);
    if (len > this.#recvWindow) {
      throw new ProtocolError(
        `stream ${this.id}: ${len} bytes of data beyond the window (${this.#recvWindow} left)`,
      );
    }
    this.#recvWindow -= len;
    if (this.#readError) return;
    if (this.#readClosed) {
      this.#consumed += len;
      this.#maybeUpdateWindow();
      return;
    }
    const limit = this.#receiveLimit;
    if (limit !== null && this.#buffered + len > limit) {
      this.reset(`${this.#buffered + len} bytes received, more than the ${limit} allowed now`);
      return;
    }
    const refused = this.#host.admitReceive(this, len);
    if (refused !== null) {
      this.reset(refused);
      return;
    }
    this.#chunks.push(f.owned ? f.data : f.data.slice());
    this.#buffered += len;
    this.#host.addBuffered(len);
    this.#wakeReaders();
  }

  /** Handles an inbound window delta. Throws {@linkcode ProtocolError}. @internal */
  _onWindowUpdate(delta: number): void {
    if (delta === 0) return;
    this.#sendWindow += delta;
    if (this.#sendWindow > U32_MAX) {
      throw new ProtocolError(`stream ${this.id}: window update overflows the send window`);
    }
    this.#wakeWindow();
  }

  /** Handles ACK, FIN and RST on an inbound frame. @internal */
  _onFlags(flags: number): void {
    if (flags & Flag.ACK) this.#established = true;
    if (flags & Flag.RST) {
      this.#fail(new StreamResetError(`stream ${this.id}: reset by peer`), false);
      return;
    }
    if ((flags & Flag.FIN) && !this.#remoteFin) {
      this.#remoteFin = true;
      this.#wakeReaders();
      this.#checkRelease();
    }
  }

  /** Ends the stream because its session ended. @internal */
  _sessionClosed(err: Error): void {
    this.#fail(err, true);
  }
}
