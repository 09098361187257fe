/**
 * One stream's protocol state inside the sans-IO session core (`core.ts`): the receive buffer
 * and the window advertised for it, the send window and the bytes queued against it, the
 * half-close and reset states. No I/O, no clock, no promises: inbound frames and local calls
 * change it, `now` comes in where window tuning needs it, and it tells its owner what changed
 * through a {@linkcode StreamWaker}. The async {@linkcode Stream} handle waits on top of it.
 *
 * Every byte's position is counted: {@linkcode StreamState.sentBytes} (framed and handed to the
 * transport) and {@linkcode StreamState.receivedBytes} (arrived in Data frames) are stream
 * offsets, what a resumable stream exchanges to learn what the peer has.
 *
 * @module
 */
import type { ResolvedSessionOptions } from "./config.ts";
import { ProtocolError, StreamResetError } from "./errors.ts";
import {
  Flag,
  type Frame,
  FrameType,
  HEADER_LENGTH,
  SPEC_INITIAL_WINDOW,
  writeHeader,
} from "./frame.ts";

/**
 * What a stream needs from its session. Internal: implemented by `SessionCore`.
 * @internal
 */
export interface StreamHost {
  /** The session's options, defaults filled in. */
  readonly options: ResolvedSessionOptions;
  /** Queues a header-only frame ahead of data. */
  sendControl(type: FrameType, flags: number, streamId: number, length: number): void;
  /** The stream has queued outgoing chunks. */
  scheduleData(stream: StreamState): void;
  /** The stream is finished and leaves the session's table. */
  release(stream: StreamState): void;
  /** Round-trip estimate used by window auto-tuning, ms. */
  rttEstimateMs(): number;
  /** Adds `n` (may be negative) to the session's count of buffered receive bytes. */
  addBuffered(n: number): void;
  /**
   * `n` bytes arrived within the stream's window: null to buffer them, or why they may not be
   * (a receive budget is spent), and the stream is reset instead.
   */
  admitReceive(stream: StreamState, n: number): string | null;
  /** Whether the stream's receive window may grow by `n` bytes (auto-tuning). */
  admitWindowGrowth(stream: StreamState, n: number): boolean;
}

/**
 * Told when a stream's state changed in a way a waiting reader or writer cares about. One waker
 * may serve every stream of a session: each call names the stream.
 */
export interface StreamWaker {
  /** Bytes arrived on `stream`, its read side ended, or it failed. */
  readable(stream: StreamState): void;
  /** Send window arrived on `stream`, its write side closed, or it failed. */
  writable(stream: StreamState): void;
}

/**
 * A piece of outgoing data waiting to be framed.
 * @internal
 */
export interface OutChunk {
  /** Bytes to send (a view of the caller's buffer; the caller waits until it is copied). */
  data: Uint8Array;
  /** Bytes of `data` already copied into a frame. */
  off: number;
  /** Send FIN with the last byte (or alone, when `data` is empty). */
  fin: boolean;
  /** Called once the whole chunk has been copied into a frame. */
  resolve?: () => void;
  /** Called if the chunk will never be sent. */
  reject?: (e: Error) => void;
}

const EMPTY = new Uint8Array(0);
const U32_MAX = 0xffffffff;
/** A Data frame is not started with less room than this (unless the chunk's rest is less). */
const MIN_FRAME_PAYLOAD = 4096;
/**
 * How much a window-limited stream's receive window grows at each WindowUpdate. A window-limited
 * stream gets about one update per round trip (the peer sends the whole window in one burst, then
 * waits), so this is the ramp per round trip: 4 reaches the 32 MiB cap from 256 KiB in four round
 * trips instead of seven. Measured (`bench/vs_portforward.ts`'s 64 MiB download at +20 ms, six
 * downloads each): bytes after the first one in 366–510 ms against 481–694 ms with 2.
 */
const WINDOW_GROWTH = 4;

// A stream's yes/no states, as bits of one field (`StreamState.#flags`): a session may hold
// thousands of idle streams, and each boolean field would cost a pointer-sized slot.
/** In the core's ready list. */
const SCHEDULED = 1;
/** The peer's FIN arrived. */
const REMOTE_FIN = 2;
/** Closed for reading locally (`close`). */
const READ_CLOSED = 4;
/** Closed for writing locally (`closeWrite`, `close`, or a request with FIN). */
const WRITE_CLOSED = 8;
/** FIN queued (or sent). */
const FIN_QUEUED = 16;
/** Left the session. */
const RELEASED = 32;
/** The peer acknowledged the stream (or it is the accepting side's). */
const ESTABLISHED = 64;

/**
 * A stream's state. Made by `SessionCore`; the driver's handle reads and writes through it.
 *
 * Kept small, as a session may hold thousands of idle streams: yes/no states are bits of one
 * field, and the receive and send queues exist only while they hold something (the send queue
 * stays once used, so that writing allocates nothing more).
 */
export class StreamState {
  /** Stream id: odd when the client side opened it, even for the server side. */
  readonly id: number;
  /** The driver's object for this stream (the public `Stream`), made when first needed. */
  handle: unknown = undefined;
  /** Who waits on this stream, if anyone. */
  waker: StreamWaker | null = null;
  #host: StreamHost;
  /** The yes/no states: `SCHEDULED`, `REMOTE_FIN`, … */
  #flags: number;

  // Receive side.
  /** Received chunks not yet read, from `#chunkHead` on; null when none are. */
  #chunks: Uint8Array[] | null = null;
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
  #readError: Error | null = null;
  #received = 0;

  // Send side.
  #sendWindow = SPEC_INITIAL_WINDOW;
  #writeError: Error | null = null;
  /** Chunks waiting to be framed; null until the first, and again once FIN is framed. */
  #out: OutChunk[] | null = null;
  #sent = 0;

  /** Most bytes the stream may buffer, or null for its window; see `limitReceive`. */
  #receiveLimit: number | null = null;
  /** How much the receive window was granted beyond the spec's (at open and by auto-tuning). */
  #grown = 0;

  /** @internal Made by `SessionCore`; `now` starts the window-tuning clock. */
  constructor(host: StreamHost, id: number, opener: boolean, now: number) {
    this.#host = host;
    this.id = id;
    this.#flags = opener ? 0 : ESTABLISHED;
    this.#lastUpdateAt = now;
  }

  /** True while the stream sits in the core's ready list. @internal */
  get scheduled(): boolean {
    return (this.#flags & SCHEDULED) !== 0;
  }

  set scheduled(on: boolean) {
    this.#flags = on ? this.#flags | SCHEDULED : this.#flags & ~SCHEDULED;
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
    return (this.#flags & ESTABLISHED) !== 0;
  }

  /** True once the stream has left its session (both sides done, reset, or session closed). */
  get released(): boolean {
    return (this.#flags & RELEASED) !== 0;
  }

  /**
   * Bytes the receive window was granted beyond the spec's 256 KiB: the initial window's extra
   * (when admitted) plus auto-tuning's growth.
   */
  get windowGrowth(): number {
    return this.#grown;
  }

  /** Why reads fail (reset, session closed), or null. */
  get readError(): Error | null {
    return this.#readError;
  }

  /** True once no more bytes will arrive for reading (peer's FIN, or closed locally). */
  get readEnded(): boolean {
    return (this.#flags & (REMOTE_FIN | READ_CLOSED)) !== 0;
  }

  /** True once FIN is queued (or sent), or the stream failed: `closeWrite` has nothing to do. */
  get writeDone(): boolean {
    return (this.#flags & FIN_QUEUED) !== 0 || this.#writeError !== null;
  }

  /** Data bytes framed for the peer so far: the send offset. */
  get sentBytes(): number {
    return this.#sent;
  }

  /** Data bytes that arrived from the peer so far (read, buffered or discarded): the receive offset. */
  get receivedBytes(): number {
    return this.#received;
  }

  /** Bytes queued to send and not yet framed. */
  get queuedBytes(): number {
    let n = 0;
    if (this.#out !== null) { for (const c of this.#out) n += c.data.length - c.off; }
    return n;
  }

  /** True when something waits to be framed. */
  get hasOutput(): boolean {
    return this.#out !== null && this.#out.length > 0;
  }

  /**
   * True when enough was consumed that a WindowUpdate is due: call
   * {@linkcode StreamState.returnCredit} with the time.
   */
  get creditDue(): boolean {
    return (this.#flags & (REMOTE_FIN | RELEASED)) === 0 &&
      this.#consumed >= this.#windowSize / 2;
  }

  /** See `Stream.limitReceive`. */
  limitReceive(bytes: number | null): void {
    this.#receiveLimit = bytes;
    if (bytes !== null && this.#buffered > bytes && !this.released) {
      this.reset(`${this.#buffered} bytes buffered, more than the ${bytes} allowed now`);
    }
  }

  /** Throws why a write cannot go on (failed, or closed for writing), if it cannot. */
  checkWritable(): void {
    if (this.#writeError) throw this.#writeError;
    if (this.#flags & WRITE_CLOSED) {
      throw new Deno.errors.BrokenPipe(`write stream ${this.id}: stream closed for writing`);
    }
  }

  /**
   * Queues `data` (at most the send window) to send; `resolve` is called once it is all copied
   * into frames, `reject` if it never will be. Throws as `checkWritable` does.
   */
  queue(data: Uint8Array, resolve?: () => void, reject?: (e: Error) => void): void {
    this.checkWritable();
    if (data.length > this.#sendWindow) throw new RangeError("queue: more than the send window");
    this.#sendWindow -= data.length;
    (this.#out ??= []).push({ data, off: 0, fin: false, resolve, reject });
    this.#host.scheduleData(this);
  }

  /** Moves up to `p.length` buffered bytes into `p`; returns how many (see `creditDue`). */
  copyOut(p: Uint8Array): number {
    const chunks = this.#chunks;
    if (chunks === null) return 0;
    let n = 0;
    while (n < p.length && this.#chunkHead < chunks.length) {
      const c = chunks[this.#chunkHead];
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
        chunks[this.#chunkHead++] = EMPTY;
        this.#chunkOff = 0;
      }
    }
    this.#consumedOut(n);
    return n;
  }

  /**
   * The next buffered bytes, at most `max` (and at least one: call only with bytes buffered),
   * as a view the caller may keep (the chunks are the stream's own). See `creditDue`.
   */
  takeChunk(max: number): Uint8Array {
    const chunks = this.#chunks!;
    const c = chunks[this.#chunkHead];
    const take = Math.min(max, c.length - this.#chunkOff);
    const out = this.#chunkOff === 0 && take === c.length
      ? c
      : c.subarray(this.#chunkOff, this.#chunkOff + take);
    this.#chunkOff += take;
    if (this.#chunkOff === c.length) {
      chunks[this.#chunkHead++] = EMPTY;
      this.#chunkOff = 0;
    }
    this.#consumedOut(take);
    return out;
  }

  /** Sends the WindowUpdate that `creditDue` says is due (growing the window when fast). */
  returnCredit(now: number): void {
    this.#maybeUpdateWindow(now);
  }

  /**
   * Half-closes: FIN after the bytes queued. `resolve` is called once the FIN is framed,
   * `reject` if it never will be. Does nothing once `writeDone`.
   */
  closeWrite(resolve?: () => void, reject?: (e: Error) => void): void {
    if (this.writeDone) return;
    this.#flags |= WRITE_CLOSED;
    this.#queueFin(resolve, reject);
  }

  /** See `Stream.close`. */
  close(now: number): void {
    if (!(this.#flags & READ_CLOSED)) {
      this.#flags |= READ_CLOSED;
      if (this.#buffered > 0) {
        this.#host.addBuffered(-this.#buffered);
        this.#consumed += this.#buffered;
        this.#buffered = 0;
        this.#chunks = null;
        this.#chunkHead = 0;
        this.#chunkOff = 0;
        this.#maybeUpdateWindow(now);
      }
      this.waker?.readable(this);
    }
    if (!(this.#flags & (FIN_QUEUED | RELEASED)) && !this.#writeError) {
      this.#flags |= WRITE_CLOSED;
      this.#queueFin();
      this.waker?.writable(this);
    }
    this.#checkRelease();
  }

  /** See `Stream.reset`. */
  reset(reason?: string): void {
    if (this.released) return;
    const why = reason === undefined ? "" : ` (${reason})`;
    this.#fail(new StreamResetError(`stream ${this.id}: reset locally${why}`), false);
    this.#host.sendControl(FrameType.WindowUpdate, Flag.RST, this.id, 0);
  }

  // --- for the core ---

  /**
   * Sends the SYN (opener) or ACK (acceptor) with any window above the spec's: granted as window
   * growth, so a policy that bounds growth bounds it too (refused, the stream opens at the spec's
   * window). @internal
   */
  sendOpenFlag(flag: number): void {
    let delta = this.#host.options.initialWindow - SPEC_INITIAL_WINDOW;
    if (delta > 0 && this.#host.admitWindowGrowth(this, delta)) {
      this.#recvWindow += delta;
      this.#windowSize += delta;
      this.#grown += delta;
    } else delta = 0;
    this.#host.sendControl(FrameType.WindowUpdate, flag, this.id, delta);
  }

  /**
   * Queues `p` at once, before any other write, so it leaves in the same transport write as the
   * SYN. `p` must fit the initial send window. @internal
   */
  queueInitial(p: Uint8Array, fin = false): void {
    if (p.length > this.#sendWindow) {
      throw new RangeError("initial data larger than the send window");
    }
    this.#sendWindow -= p.length;
    if (fin) {
      // The whole request: FIN rides on the same frame, so nothing is written after the answer.
      this.#flags |= WRITE_CLOSED | FIN_QUEUED;
    }
    if (p.length === 0 && !fin) return;
    (this.#out ??= []).push({ data: p, off: 0, fin });
    this.#host.scheduleData(this);
  }

  /**
   * Writes the stream's next Data frame (header and up to `maxPayload` bytes) into `buf` at
   * `pos`, within `limit`. Returns the bytes written, 0 when nothing is queued, or -1 when the
   * next frame does not fit (the caller sends what it has first). @internal
   */
  frameInto(buf: Uint8Array, pos: number, limit: number, maxPayload: number): number {
    const room = limit - pos - HEADER_LENGTH;
    const out = this.#out;
    const c = out?.[0];
    if (c === undefined) return 0;
    if (room < 0) return -1;
    const left = c.data.length - c.off;
    if (left > 0 && room < Math.min(left, MIN_FRAME_PAYLOAD)) return -1;
    const n = Math.min(left, maxPayload, room);
    const end = c.off + n === c.data.length;
    writeHeader(buf, pos, FrameType.Data, end && c.fin ? Flag.FIN : 0, this.id, n);
    if (n > 0) {
      buf.set(c.data.subarray(c.off, c.off + n), pos + HEADER_LENGTH);
      c.off += n;
      this.#sent += n;
    }
    if (end) {
      out!.shift();
      // Nothing is ever written after FIN: the queue goes.
      if (c.fin && out!.length === 0) this.#out = null;
      c.resolve?.();
    }
    return HEADER_LENGTH + n;
  }

  /** Handles an inbound Data frame (or piece of one). Throws {@linkcode ProtocolError}. @internal */
  onData(f: Frame, now: number): void {
    const len = f.length;
    if (len === 0) return;
    if (this.#flags & REMOTE_FIN) throw new ProtocolError(`stream ${this.id}: data after FIN`);
    if (len > this.#recvWindow) {
      throw new ProtocolError(
        `stream ${this.id}: ${len} bytes of data beyond the window (${this.#recvWindow} left)`,
      );
    }
    this.#recvWindow -= len;
    this.#received += len;
    if (this.#readError) return;
    if (this.#flags & READ_CLOSED) {
      this.#consumed += len;
      this.#maybeUpdateWindow(now);
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
    (this.#chunks ??= []).push(f.owned ? f.data : f.data.slice());
    this.#buffered += len;
    this.#host.addBuffered(len);
    this.waker?.readable(this);
  }

  /** Handles an inbound window delta. Throws {@linkcode ProtocolError}. @internal */
  onWindowUpdate(delta: number): void {
    if (delta === 0) return;
    this.#sendWindow += delta;
    if (this.#sendWindow > U32_MAX) {
      throw new ProtocolError(`stream ${this.id}: window update overflows the send window`);
    }
    this.waker?.writable(this);
  }

  /** Handles ACK, FIN and RST on an inbound frame. @internal */
  onFlags(flags: number): void {
    if (flags & Flag.ACK) this.#flags |= ESTABLISHED;
    if (flags & Flag.RST) {
      this.#fail(new StreamResetError(`stream ${this.id}: reset by peer`), false);
      return;
    }
    if ((flags & Flag.FIN) && !(this.#flags & REMOTE_FIN)) {
      this.#flags |= REMOTE_FIN;
      this.waker?.readable(this);
      this.#checkRelease();
    }
  }

  /** Ends the stream because its session ended; data that ended with FIN stays readable. @internal */
  sessionClosed(err: Error): void {
    this.#fail(err, true);
  }

  // --- internals ---

  #queueFin(resolve?: () => void, reject?: (e: Error) => void): void {
    this.#flags |= FIN_QUEUED;
    (this.#out ??= []).push({ data: EMPTY, off: 0, fin: true, resolve, reject });
    this.#host.scheduleData(this);
    this.#checkRelease();
  }

  /** `n` bytes left the receive buffer: compacts the chunk list, counts the credit. */
  #consumedOut(n: number): void {
    const chunks = this.#chunks;
    if (chunks === null) {
      // Nothing was buffered (a read into an empty buffer).
    } else if (this.#chunkHead === chunks.length) {
      this.#chunks = null;
      this.#chunkHead = 0;
    } else if (this.#chunkHead > 64 && this.#chunkHead * 2 > chunks.length) {
      this.#chunks = chunks.slice(this.#chunkHead);
      this.#chunkHead = 0;
    }
    this.#buffered -= n;
    this.#host.addBuffered(-n);
    this.#consumed += n;
  }

  /**
   * Sends a WindowUpdate once half the window is consumed; grows the window `WINDOW_GROWTH`-fold
   * when the previous update was less than two round trips ago (the reader keeps up with the
   * window, so the window is what limits the stream).
   */
  #maybeUpdateWindow(now: number): void {
    if (!this.creditDue) return;
    const max = this.#host.options.maxWindow;
    if (
      this.#windowSize < max && !(this.#flags & READ_CLOSED) &&
      now - this.#lastUpdateAt < 2 * this.#host.rttEstimateMs()
    ) {
      const grow = Math.min(this.#windowSize * WINDOW_GROWTH, max) - this.#windowSize;
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

  #checkRelease(): void {
    const f = this.#flags;
    if (!(f & RELEASED) && (f & (FIN_QUEUED | REMOTE_FIN)) === (FIN_QUEUED | REMOTE_FIN)) {
      this.#flags = f | RELEASED;
      this.#host.release(this);
    }
  }

  #fail(err: Error, keepReceived: boolean): void {
    if (!this.#writeError) this.#writeError = err;
    const out = this.#out;
    this.#out = null;
    if (out !== null) { for (const c of out) c.reject?.(err); }
    if (!(keepReceived && (this.#flags & REMOTE_FIN)) && !this.#readError) {
      this.#readError = err;
      if (this.#buffered > 0) this.#host.addBuffered(-this.#buffered);
      this.#buffered = 0;
      this.#chunks = null;
      this.#chunkHead = 0;
      this.#chunkOff = 0;
    }
    this.waker?.readable(this);
    this.waker?.writable(this);
    if (!(this.#flags & RELEASED)) {
      this.#flags |= RELEASED;
      this.#host.release(this);
    }
  }
}
