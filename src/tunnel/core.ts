/**
 * The yamux session as a state machine, in the manner of smoltcp and quinn-proto: no I/O, no
 * timers, no clock. The driver (`Session`) feeds it what the transport read
 * ({@linkcode SessionCore.receive}, or frames with {@linkcode SessionCore.handleFrame}), asks it
 * for bytes to write ({@linkcode SessionCore.pollTransmit}) and when to call back
 * ({@linkcode SessionCore.pollTimeout}, {@linkcode SessionCore.handleTimeout}), and passes `now`
 * into every call that needs the time. It holds the stream table and every stream's state
 * ({@linkcode StreamState}: windows, buffers, half-closes), dispatches frames, answers pings,
 * runs keepalive, GoAway and the write watchdog, and frames outgoing data: control frames
 * (window updates, ping answers, resets) ahead of bulk data, streams' data interleaved fairly.
 *
 * What the driver must act on it learns from {@linkcode CoreEvents}, called synchronously; what a
 * stream's reader or writer waits for, from the stream's {@linkcode StreamWaker}.
 *
 * @module
 */
import {
  type ResolvedSessionOptions,
  resolveSessionOptions,
  type SessionOptions,
} from "./config.ts";
import { Decoder } from "./decoder.ts";
import { GoAwayCode, ProtocolError, SessionClosedError } from "./errors.ts";
import {
  Flag,
  type Frame,
  FrameType,
  HEADER_LENGTH,
  SPEC_INITIAL_WINDOW,
  writeHeader,
} from "./frame.ts";
import { type StreamHost, StreamState } from "./stream_state.ts";
import { RetainBuffer } from "./retain.ts";

/** Why and how a session ended; what `Session.closed` resolves with. */
export interface SessionCloseInfo {
  /** What ended the session. */
  reason:
    | "local"
    | "remote-goaway"
    | "transport-eof"
    | "transport-error"
    | "protocol-error"
    | "keepalive-timeout";
  /** The error behind it, when there was one. */
  error?: Error;
  /** The GoAway code sent (`local`) or received (`remote-goaway`). */
  goAwayCode?: number;
}

/** Counters of a session; a live object updated in place. */
export interface SessionStats {
  /** Streams this side opened. */
  streamsOpened: number;
  /** Streams this side accepted. */
  streamsAccepted: number;
  /** Transport bytes read. */
  bytesIn: number;
  /** Transport bytes written. */
  bytesOut: number;
  /** Round trip of the last answered ping, ms. */
  lastRttMs: number | null;
  /** Bytes received on all streams and not yet read (bounded by the windows). */
  bufferedBytes: number;
}

/**
 * The limits a server puts on its peer's streams, over stream states (the driver maps its
 * `SessionPolicy`, which speaks of `Stream` handles, onto this). Every member is optional.
 */
export interface CorePolicy {
  /** Bytes an accepted stream may buffer until the application changes it; see `limitReceive`. */
  readonly inboundReceiveLimit?: number;
  /** `n` bytes arrived on `stream`: null to buffer them, or why not (the stream is reset). */
  admitReceive?(stream: StreamState, n: number): string | null;
  /** The session's buffered receive bytes changed by `n`. */
  onBuffered?(n: number): void;
  /** Whether auto-tuning may grow `stream`'s receive window by `n` bytes. */
  admitWindowGrowth?(stream: StreamState, n: number): boolean;
  /** `stream` left the session; called once per stream. */
  onRelease?(stream: StreamState): void;
}

/** What the core tells its driver, synchronously, as it happens. Every member is optional. */
export interface CoreEvents {
  /** Frames wait to be written: call {@linkcode SessionCore.pollTransmit}. */
  transmitReady?(): void;
  /** A stream waits to be accepted, or none ever will (the session is going away or ending). */
  acceptReady?(): void;
  /** The ping sent with `opaque` was answered after `rttMs`. */
  pong?(opaque: number, rttMs: number): void;
  /** A deadline was set that may be earlier than the last {@linkcode SessionCore.pollTimeout}. */
  timeoutChanged?(): void;
  /**
   * The session is ending with `error`: every stream has failed with it; pending pings should
   * too. A GoAway may still be flushed before {@linkcode CoreEvents.closed}.
   */
  ending?(error: SessionClosedError): void;
  /** The session has ended: close the transport. Called once, after `ending`. */
  closed?(info: SessionCloseInfo): void;
  /**
   * A resumable session lost its transport (`info` says how) and waits, streams intact, for
   * {@linkcode SessionCore.resume} on a new one: drop the old transport.
   */
  detached?(info: SessionCloseInfo): void;
  /**
   * A buffer a resumable session kept from `pollTransmit(…, mayKeep)` is acknowledged (or the
   * session ended): the driver may write into it again. `buf` is the view that was kept.
   */
  released?(buf: Uint8Array): void;
}

/** What a {@linkcode SessionCore} starts with besides its options. */
export interface SessionCoreInit {
  /** The time now, ms (the start-up ping's send time, keepalive's start). */
  now: number;
  /** Where the driver hears what happened. */
  events?: CoreEvents;
  /** Limits on the peer's streams. */
  policy?: CorePolicy;
}

/** Options for {@linkcode SessionCore.open}. */
export interface CoreOpenOptions {
  /** Bytes queued with the SYN (at most the initial send window). */
  initial?: Uint8Array;
  /** FIN with the initial bytes: the whole request. */
  closeWrite?: boolean;
}

interface _Control {
  type: FrameType;
  flags: number;
  id: number;
  length: number;
}

const EMPTY = new Uint8Array(0);

/** Largest Data payload this side sends in one frame. */
const MAX_DATA_FRAME = 64 * 1024;
/** How long an abortive close waits for its GoAway to be written, ms. */
const CLOSE_FLUSH_MS = 250;
/** Control frames queued before the session gives up on a peer that does not read. */
const MAX_CONTROL_QUEUE = 65536;
/** Round trip assumed by window tuning before the first ping answer, ms. */
const DEFAULT_RTT_MS = 50;
/**
 * A resumable session acknowledges at least every eighth of its retain limit received (the
 * peer's is the same: the client adopts the manager's), and with anything else it sends...
 */
const ACK_FRACTION = 8;
/** ...and at most this long after a frame arrived, ms (sooner when it sends anything else). */
const ACK_DELAY_MS = 200;
const U32 = 2 ** 32;
/** A transport write at least this long is kept as it is, not copied (see `retain.ts`). */
const KEEP_MIN = 32 * 1024;

/**
 * The session state machine.
 *
 * @example
 * ```ts
 * import { SessionCore } from "./core.ts";
 * const a = new SessionCore({ client: true }, { now: 0 });
 * const b = new SessionCore({ client: false }, { now: 0 });
 * const buf = new Uint8Array(64 * 1024);
 * // Carries what `from` has to write to `to`, arriving at `now`.
 * const carry = (from: SessionCore, to: SessionCore, now: number) => {
 *   const n = from.pollTransmit(buf, now);
 *   from.transmitted(n);
 *   to.receive(buf.slice(0, n), true, now);
 * };
 * const s = a.open(0, { initial: new TextEncoder().encode("hi"), closeWrite: true });
 * carry(a, b, 10); // SYN, "hi" and FIN, and the start-up ping
 * const t = b.accept()!;
 * const got = new Uint8Array(2);
 * if (t.copyOut(got) !== 2 || !t.readEnded) throw new Error("unexpected");
 * carry(b, a, 20); // the ACK and the ping's answer
 * if (a.stats.lastRttMs !== 20 || s.sentBytes !== 2 || !s.established) {
 *   throw new Error("unexpected");
 * }
 * ```
 */
export class SessionCore {
  /** The options, defaults filled in. */
  readonly options: ResolvedSessionOptions;
  /** Counters; a live object. */
  readonly stats: SessionStats = {
    streamsOpened: 0,
    streamsAccepted: 0,
    bytesIn: 0,
    bytesOut: 0,
    lastRttMs: null,
    bufferedBytes: 0,
  };

  #events: CoreEvents;
  #policy: CorePolicy;
  #host: StreamHost;
  #decoder: Decoder;
  #streams = new Map<number, StreamState>();
  #nextId: number;
  #lastInboundId = 0;
  #backlog: StreamState[] = [];

  #control: _Control[] = [];
  #ready: StreamState[] = [];
  /** When the transport write of the last `pollTransmit` began, or -1 when none is pending. */
  #writeStarted = -1;

  /** Send times of unanswered pings, by opaque value. */
  #pings = new Map<number, number>();
  #nextPing = 0;
  /** When the next keepalive ping is due, or null (keepalive off, or the session ending). */
  #keepaliveDue: number | null = null;
  /** The unanswered keepalive ping, or -1. */
  #keepaliveOpaque = -1;
  /** When the unanswered keepalive ping times out, or null. */
  #keepaliveDeadline: number | null = null;

  #goAwaySent: number | null = null;
  #goAwayReceived: number | null = null;
  #finishing = false;
  #terminating = false;
  #closed = false;
  /** When an ending session stops waiting for its GoAway to be written, or null. */
  #flushDeadline: number | null = null;
  #closeInfo: SessionCloseInfo | null = null;
  #closeError: SessionClosedError | null = null;

  // Resumable sessions only.
  /** What was sent and not yet acknowledged, or null in a plain yamux session. */
  #retain: RetainBuffer | null;
  /** The transport is lost: nothing is sent until `resume`. */
  #detached = false;
  /** How the transport was lost, while detached. */
  #detachInfo: SessionCloseInfo | null = null;
  /** Where sending the retained bytes again has got to, or -1 when not replaying. */
  #replayAt = -1;
  /** Bytes of the peer's stream received (the receive offset). */
  #rxOffset = 0;
  /** The receive offset last told to the peer. */
  #ackedRx = 0;
  /** When an Ack is due for frames that arrived, or null when none waits. */
  #ackDeadline: number | null = null;
  /** An Ack is due now (enough arrived, or its deadline passed). */
  #ackNow = false;
  /** The last `pollTransmit` kept the caller's buffer. */
  #kept = false;

  /**
   * A session. It queues a ping at once (its answer gives window tuning a round trip) and, with
   * keepalive on, is due its first keepalive ping one interval from `init.now`.
   */
  constructor(options: SessionOptions, init: SessionCoreInit) {
    const o = resolveSessionOptions(options);
    this.options = o;
    this.#events = init.events ?? {};
    const policy = init.policy ?? {};
    this.#policy = policy;
    this.#decoder = new Decoder({ maxFrameSize: o.maxFrameSize, acks: o.resumable });
    this.#retain = o.resumable ? new RetainBuffer((b) => this.#events.released?.(b)) : null;
    this.#nextId = o.client ? 1 : 2;
    const stats = this.stats;
    this.#host = {
      options: o,
      sendControl: (type, flags, id, length) => this.#sendControl(type, flags, id, length),
      scheduleData: (s) => this.#scheduleData(s),
      release: (s) => this.#release(s),
      rttEstimateMs: () => stats.lastRttMs ?? DEFAULT_RTT_MS,
      addBuffered: (n) => {
        stats.bufferedBytes += n;
        policy.onBuffered?.(n);
      },
      admitReceive: (s, n) => policy.admitReceive?.(s, n) ?? null,
      admitWindowGrowth: (s, n) => policy.admitWindowGrowth?.(s, n) ?? true,
    };
    this.ping(init.now);
    if (o.keepaliveIntervalMs > 0) this.#keepaliveDue = init.now + o.keepaliveIntervalMs;
  }

  /** True once the session has ended or is ending (not merely going away). */
  get isClosed(): boolean {
    return this.#terminating;
  }

  /** True once the session has ended and its transport should be closed. */
  get isDone(): boolean {
    return this.#closed;
  }

  /** True once a GoAway was sent or received: no new streams either way. */
  get isGoingAway(): boolean {
    return this.#goAwaySent !== null || this.#goAwayReceived !== null;
  }

  /** The GoAway code this side sent, or null. */
  get goAwaySent(): number | null {
    return this.#goAwaySent;
  }

  /** Streams in the table (open, half-closed or waiting to be accepted). */
  get numStreams(): number {
    return this.#streams.size;
  }

  /** Why the session ended, once it is ending. */
  get closeInfo(): SessionCloseInfo | null {
    return this.#closeInfo;
  }

  /** The error streams and calls fail with, once the session is ending. */
  get closeError(): SessionClosedError | null {
    return this.#closeError;
  }

  /** True when frames wait to be written. */
  get wantsTransmit(): boolean {
    if (this.#detached) return false;
    return this.#replayAt >= 0 || this.#control.length > 0 || this.#ready.some((s) => s.hasOutput);
  }

  /** True while a resumable session has lost its transport and waits to resume. */
  get isDetached(): boolean {
    return this.#detached;
  }

  /** Why the session is detached, or null. */
  get detachInfo(): SessionCloseInfo | null {
    return this.#detachInfo;
  }

  /**
   * Bytes of the peer's byte stream received so far, over every transport: what this side
   * tells the peer when resuming (the peer sends again from there).
   */
  get receivedOffset(): number {
    return this.#rxOffset;
  }

  /** Bytes the streams have queued to send and not yet framed. */
  get queuedBytes(): number {
    let n = 0;
    for (const st of this.#streams.values()) n += st.queuedBytes;
    return n;
  }

  /** Bytes kept because the peer has not acknowledged them (0 unless resumable). */
  get retainedBytes(): number {
    return this.#retain?.size ?? 0;
  }

  /**
   * Why the session could not go on from a peer that has received `peerReceived` bytes of this
   * side's stream, or null when it could (detached or not).
   */
  resumeProblem(peerReceived: number): string | null {
    const r = this.#retain;
    if (r === null) return "the session is not resumable";
    if (this.#terminating) return "the session has ended";
    if (!Number.isSafeInteger(peerReceived) || peerReceived < r.start || peerReceived > r.end) {
      return `the peer has received ${peerReceived} bytes; this side kept ${r.start} to ${r.end}`;
    }
    return null;
  }

  /**
   * Resumes a detached session on a new transport whose peer has received `peerReceived`
   * bytes of this side's stream: what it lacks is sent again first, then everything queued.
   * Returns null, or why it cannot (the offset is outside what this side kept: the peer is not
   * the session's other end, or lost state): then the session should be closed.
   */
  resume(peerReceived: number, now: number): string | null {
    const problem = this.resumeProblem(peerReceived);
    if (problem !== null) return problem;
    if (!this.#detached) return "the session is not detached";
    const r = this.#retain!;
    r.ackTo(peerReceived);
    this.#detached = false;
    this.#detachInfo = null;
    this.#replayAt = peerReceived < r.end ? peerReceived : -1;
    // The peer learned the receive offset in the handshake.
    this.#ackedRx = this.#rxOffset;
    this.#ackDeadline = null;
    this.#ackNow = false;
    if (this.options.keepaliveIntervalMs > 0) {
      this.#keepaliveDue = now + this.options.keepaliveIntervalMs;
    }
    this.#events.timeoutChanged?.();
    this.#events.transmitReady?.();
    return null;
  }

  /**
   * Detaches a resumable session from its transport now (`reason` says why: another transport
   * took it over, or the path is known to be gone), as a lost transport would. Returns false
   * when the session is not resumable or is ending or going away (then nothing changed).
   */
  detach(reason: Error): boolean {
    return this.#detach({ reason: "transport-error", error: reason });
  }

  // --- the application's calls ---

  /**
   * Opens a stream: queues its SYN (and `initial` bytes, and FIN with `closeWrite`). Throws
   * {@linkcode SessionClosedError} when the session is ending or going away, RangeError when
   * `maxStreams` streams are open.
   */
  open(now: number, options: CoreOpenOptions = {}): StreamState {
    if (this.#terminating) {
      throw new SessionClosedError("open stream: session closed", { cause: this.#closeError });
    }
    if (this.isGoingAway) throw new SessionClosedError("open stream: session is going away");
    if (this.#streams.size >= this.options.maxStreams) {
      throw new RangeError(`open stream: ${this.options.maxStreams} streams already open`);
    }
    if (this.#nextId > 0xffffffff) throw new SessionClosedError("open stream: ids exhausted");
    const id = this.#nextId;
    this.#nextId += 2;
    const s = new StreamState(this.#host, id, true, now);
    this.#streams.set(id, s);
    this.stats.streamsOpened++;
    s.sendOpenFlag(Flag.SYN);
    // Queued with the SYN, so both leave in one transport write: a request on a new stream
    // costs one round trip, not two (a WebSocket with Nagle on holds a second small write
    // until the first is acknowledged).
    if (options.initial !== undefined || options.closeWrite) {
      s.queueInitial(options.initial ?? EMPTY, options.closeWrite ?? false);
    }
    return s;
  }

  /**
   * The next stream the peer opened (its ACK is queued), or null when none waits: then, if the
   * session is ending or going away, none ever will.
   */
  accept(): StreamState | null {
    while (this.#backlog.length > 0) {
      const s = this.#backlog.shift()!;
      if (s.released && s.bufferedBytes === 0) continue;
      this.stats.streamsAccepted++;
      if (!s.released) s.sendOpenFlag(Flag.ACK);
      return s;
    }
    return null;
  }

  /**
   * Queues a ping; returns its opaque value (the {@linkcode CoreEvents.pong} of its answer
   * names it). Throws {@linkcode SessionClosedError} when the session is ending.
   */
  ping(now: number): number {
    if (this.#terminating) {
      throw new SessionClosedError("ping: session closed", { cause: this.#closeError });
    }
    const opaque = this.#nextPing;
    this.#nextPing = (this.#nextPing + 1) >>> 0;
    this.#pings.set(opaque, now);
    this.#sendControl(FrameType.Ping, Flag.SYN, 0, opaque);
    return opaque;
  }

  /** Forgets a ping: its answer, if any comes, is ignored. */
  cancelPing(opaque: number): void {
    this.#pings.delete(opaque);
  }

  /**
   * Queues GoAway: no new streams either way from now on; the session ends (reason `local`)
   * once the last stream is done and everything queued is written.
   */
  goAway(code: number = GoAwayCode.Normal): void {
    if (this.#terminating || this.#goAwaySent !== null) return;
    this.#goAwaySent = code;
    this.#sendControl(FrameType.GoAway, 0, 0, code);
    this.#events.acceptReady?.();
    this.#maybeFinish();
  }

  /**
   * Ends the session at once (reason `local`): every stream fails, and a GoAway (unless one was
   * sent) is written if that takes less than 250 ms.
   */
  close(now: number, reason?: Error): void {
    this.#terminate(
      reason ? { reason: "local", error: reason } : { reason: "local" },
      this.#goAwaySent === null && !this.#detached
        ? { code: GoAwayCode.Normal, deadline: now + CLOSE_FLUSH_MS }
        : null,
    );
  }

  // --- the transport's side ---

  /**
   * Handles bytes the transport read. With `owned`, the caller gives `chunk` away and stream
   * payloads may stay views of it (see `Decoder.push`); otherwise they are copied before the
   * caller may reuse it. A protocol violation ends the session (GoAway with its code).
   */
  receive(chunk: Uint8Array, owned: boolean, now: number): void {
    if (this.#terminating || this.#detached) return;
    this.stats.bytesIn += chunk.length;
    this.#rxOffset += chunk.length;
    try {
      this.#decoder.push(chunk, owned);
      let f: Frame | null;
      while (!this.#terminating && (f = this.#decoder.next()) !== null) this.#handle(f, now);
      if (
        this.#ackDeadline !== null && !this.#ackNow &&
        this.#rxOffset - this.#ackedRx >= this.options.retainLimit / ACK_FRACTION
      ) {
        this.#ackNow = true;
        this.#events.transmitReady?.();
      }
    } catch (e) {
      this.#failed(e, now);
    }
  }

  /**
   * Handles one decoded frame (as {@linkcode SessionCore.receive} does for each frame in the
   * bytes): for tests that drop, delay or reorder frames, and for transports that carry frames.
   * `f.data` is copied unless `f.owned`.
   */
  handleFrame(f: Frame, now: number): void {
    if (this.#terminating) return;
    try {
      this.#handle(f, now);
    } catch (e) {
      this.#failed(e, now);
    }
  }

  /** The transport ended (end of stream). A resumable session detaches instead of ending. */
  transportEof(): void {
    const info = this.#endInfo({ reason: "transport-eof" });
    if (!this.#detach(info)) this.#terminate(info, null);
  }

  /** Reading or writing the transport failed. A resumable session detaches instead of ending. */
  transportError(error: Error): void {
    const info: SessionCloseInfo = { reason: "transport-error", error };
    if (!this.#detach(info)) this.#terminate(info, null);
  }

  /**
   * Writes the frames waiting into `buf` (control frames first, then data from the ready
   * streams in turn) and returns how many bytes; 0 when there is nothing to write. Write them
   * with one transport write and report it with {@linkcode SessionCore.transmitted}; the write
   * watchdog runs from `now` until then.
   *
   * A resumable session keeps what it sent until acknowledged: with `mayKeep` it may keep `buf`
   * itself (then {@linkcode SessionCore.bufferKept} is true, and the caller must not write into
   * `buf` again until {@linkcode CoreEvents.released} gives it back); otherwise it copies.
   */
  pollTransmit(buf: Uint8Array, now: number, mayKeep = false): number {
    this.#kept = false;
    if (this.#closed || this.#detached) return 0;
    const limit = buf.length;
    let len = 0;
    const retain = this.#retain;
    if (retain !== null) {
      if (this.#replayAt >= 0) {
        // What the peer lacks goes first, as it was: the byte stream goes on where it broke.
        len = retain.copyFrom(this.#replayAt, buf);
        this.#replayAt += len;
        if (this.#replayAt === retain.end) this.#replayAt = -1;
        return this.#started(len, now);
      }
      if (this.#rxOffset > this.#ackedRx && (this.#ackNow || this.wantsTransmit)) {
        writeHeader(buf, 0, FrameType.Ack, 0, 0, this.#rxOffset % U32);
        len = HEADER_LENGTH;
        this.#ackedRx = this.#rxOffset;
        this.#ackNow = false;
        this.#ackDeadline = null;
      }
    }
    const control = this.#control;
    let ci = 0;
    while (ci < control.length && len + HEADER_LENGTH <= limit) {
      const c = control[ci++];
      writeHeader(buf, len, c.type, c.flags, c.id, c.length);
      len += HEADER_LENGTH;
    }
    if (ci === control.length) control.length = 0;
    else control.splice(0, ci);
    const ready = this.#ready;
    // Past the retain limit, data waits for the peer's Ack (control frames do not).
    const dataLimit = retain === null ? Infinity : this.options.retainLimit - retain.size;
    while (ready.length > 0 && len < dataLimit) {
      const s = ready[0];
      const n = s.frameInto(buf, len, limit, MAX_DATA_FRAME);
      if (n < 0) break;
      ready.shift();
      if (n === 0) {
        s.scheduled = false;
        continue;
      }
      len += n;
      if (s.hasOutput) ready.push(s);
      else s.scheduled = false;
    }
    if (len === 0) {
      this.#checkIdle();
      return 0;
    }
    if (retain !== null) {
      if (mayKeep && len >= KEEP_MIN) {
        retain.keep(buf.subarray(0, len));
        this.#kept = true;
      } else retain.append(buf.subarray(0, len));
    }
    return this.#started(len, now);
  }

  /** True when the last {@linkcode SessionCore.pollTransmit} kept the caller's buffer. */
  get bufferKept(): boolean {
    return this.#kept;
  }

  /** A transport write of `len` bytes begins now: the watchdog runs. */
  #started(len: number, now: number): number {
    if (len > 0 && this.#writeStarted < 0) {
      this.#writeStarted = now;
      this.#events.timeoutChanged?.();
    }
    return len;
  }

  /** The bytes of the last {@linkcode SessionCore.pollTransmit}, `n` of them, are written. */
  transmitted(n: number): void {
    this.#writeStarted = -1;
    this.stats.bytesOut += n;
    this.#checkIdle();
  }

  // --- time ---

  /**
   * When {@linkcode SessionCore.handleTimeout} is next due, ms on the caller's clock, or null
   * when nothing is timed (a call earlier than due does nothing, so a late deadline is safe).
   */
  pollTimeout(): number | null {
    if (this.#closed) return null;
    if (this.#terminating) return this.#flushDeadline;
    if (this.#detached) return null;
    let at = this.#keepaliveDue ?? Infinity;
    if (this.#ackDeadline !== null && !this.#ackNow && this.#ackDeadline < at) {
      at = this.#ackDeadline;
    }
    if (this.#keepaliveDeadline !== null && this.#keepaliveDeadline < at) {
      at = this.#keepaliveDeadline;
    }
    if (this.#writeStarted >= 0) {
      const w = this.#writeStarted + this.options.writeTimeoutMs;
      if (w < at) at = w;
    }
    return at === Infinity ? null : at;
  }

  /**
   * Acts on whatever is due at `now`: the GoAway flush of an ending session runs out, a write
   * took longer than `writeTimeoutMs`, a keepalive ping went unanswered for
   * `keepaliveTimeoutMs`, or the next keepalive ping is due.
   */
  handleTimeout(now: number): void {
    if (this.#closed) return;
    if (this.#terminating) {
      if (this.#flushDeadline !== null && now >= this.#flushDeadline) this.#finishClose();
      return;
    }
    if (this.#detached) return;
    const o = this.options;
    if (this.#writeStarted >= 0 && now - this.#writeStarted >= o.writeTimeoutMs) {
      this.#lost({
        reason: "transport-error",
        error: new Error(`transport write did not finish within ${o.writeTimeoutMs} ms`),
      });
      return;
    }
    if (this.#keepaliveDeadline !== null && now >= this.#keepaliveDeadline) {
      this.#lost({
        reason: "keepalive-timeout",
        error: new Error(`keepalive: no ping answer within ${o.keepaliveTimeoutMs} ms`),
      });
      return;
    }
    if (this.#ackDeadline !== null && now >= this.#ackDeadline && !this.#ackNow) {
      this.#ackNow = true;
      this.#events.transmitReady?.();
    }
    if (this.#keepaliveDue !== null && now >= this.#keepaliveDue) {
      // A fixed cadence, like an interval timer: a tick while the last ping is unanswered
      // sends nothing.
      while (this.#keepaliveDue <= now) this.#keepaliveDue += o.keepaliveIntervalMs;
      if (this.#keepaliveOpaque < 0) {
        this.#keepaliveOpaque = this.ping(now);
        this.#keepaliveDeadline = now + o.keepaliveTimeoutMs;
      }
      this.#events.timeoutChanged?.();
    }
  }

  // --- frames in ---

  #handle(f: Frame, now: number): void {
    if (this.#retain !== null && f.type !== FrameType.Ack && this.#ackDeadline === null) {
      // Something to acknowledge (an Ack alone is not, or two sides would ack acks for ever).
      this.#ackDeadline = now + ACK_DELAY_MS;
      this.#events.timeoutChanged?.();
    }
    switch (f.type) {
      case FrameType.Data:
      case FrameType.WindowUpdate:
        this.#handleStreamFrame(f, now);
        return;
      case FrameType.Ping:
        if (f.flags === Flag.SYN) this.#sendControl(FrameType.Ping, Flag.ACK, 0, f.length);
        else this.#onPong(f.length, now);
        return;
      case FrameType.GoAway:
        this.#onGoAway(f.length);
        return;
      case FrameType.Ack:
        this.#onAck(f.length);
        return;
    }
  }

  /** The peer has received our stream up to the offset whose low 32 bits are `low`. */
  #onAck(low: number): void {
    const r = this.#retain!;
    const ahead = (low - (r.start % U32) + U32) % U32;
    // Behind what is already known (by less than 2^31; the retained bytes never span that):
    // an Ack sent before a cut and sent again in the peer's replay. Nothing new.
    if (ahead >= U32 / 2) return;
    const full = r.start + ahead;
    if (full > r.end) {
      throw new ProtocolError(`ack of ${full} bytes, but only ${r.end} were sent`);
    }
    const wasFull = r.size >= this.options.retainLimit;
    r.ackTo(full);
    if (wasFull && this.#ready.length > 0) this.#events.transmitReady?.();
  }

  #onPong(opaque: number, now: number): void {
    const start = this.#pings.get(opaque);
    if (start === undefined) return;
    this.#pings.delete(opaque);
    const rtt = now - start;
    this.stats.lastRttMs = rtt;
    if (opaque === this.#keepaliveOpaque) {
      this.#keepaliveOpaque = -1;
      this.#keepaliveDeadline = null;
    }
    this.#events.pong?.(opaque, rtt);
  }

  #handleStreamFrame(f: Frame, now: number): void {
    const id = f.streamId;
    const o = this.options;
    let s = this.#streams.get(id);
    if (f.flags & Flag.SYN) {
      if (s) throw new ProtocolError(`stream ${id}: SYN for a stream already open`);
      if ((id & 1) === (o.client ? 1 : 0)) {
        throw new ProtocolError(`stream ${id}: peer opened a stream id of this side's parity`);
      }
      if (id <= this.#lastInboundId) {
        throw new ProtocolError(`stream ${id}: SYN reuses an old stream id`);
      }
      this.#lastInboundId = id;
      if (f.type === FrameType.Data && f.length > SPEC_INITIAL_WINDOW) {
        throw new ProtocolError(`stream ${id}: ${f.length} bytes of data beyond the window`);
      }
      if (
        this.isGoingAway || this.#streams.size >= o.maxStreams ||
        this.#backlog.length >= o.acceptBacklog
      ) {
        this.#sendControl(FrameType.WindowUpdate, Flag.RST, id, 0);
        return;
      }
      s = new StreamState(this.#host, id, false, now);
      const limit = this.#policy.inboundReceiveLimit;
      if (limit !== undefined) s.limitReceive(limit);
      this.#streams.set(id, s);
      this.#backlog.push(s);
      this.#events.acceptReady?.();
    } else if (s === undefined) {
      const ours = (id & 1) === (o.client ? 1 : 0);
      if (ours ? id < this.#nextId : id <= this.#lastInboundId) return; // in flight after close
      throw new ProtocolError(
        `stream ${id}: ${
          f.type === FrameType.Data ? "data" : "window update"
        } for a stream never opened`,
      );
    }
    if (f.type === FrameType.Data) s.onData(f, now);
    else s.onWindowUpdate(f.length);
    if (f.flags & (Flag.ACK | Flag.FIN | Flag.RST)) s.onFlags(f.flags);
  }

  #onGoAway(code: number): void {
    if (this.#goAwayReceived !== null) return;
    this.#goAwayReceived = code;
    this.#events.acceptReady?.();
    if (code !== GoAwayCode.Normal) {
      this.#terminate({
        reason: "remote-goaway",
        goAwayCode: code,
        error: new Error(`peer went away with code ${code}`),
      }, null);
      return;
    }
    this.#maybeFinish();
  }

  /** Ends the session for what `#handle` threw: a GoAway with the code, flushed for a while. */
  #failed(e: unknown, now: number): void {
    const deadline = now + this.options.writeTimeoutMs;
    if (e instanceof ProtocolError) {
      this.#terminate({ reason: "protocol-error", error: e }, { code: e.code, deadline });
    } else {
      this.#terminate(
        { reason: "protocol-error", error: e instanceof Error ? e : new Error(String(e)) },
        { code: GoAwayCode.InternalError, deadline },
      );
    }
  }

  // --- frames out ---

  #sendControl(type: FrameType, flags: number, id: number, length: number): void {
    if (this.#terminating && type !== FrameType.GoAway) return;
    if (this.#control.length >= MAX_CONTROL_QUEUE) {
      // The peer keeps asking for answers (pings, resets) but does not read them.
      this.#terminate({
        reason: "transport-error",
        error: new Error(`control queue over ${MAX_CONTROL_QUEUE} frames: peer is not reading`),
      }, null);
      return;
    }
    this.#control.push({ type, flags, id, length });
    this.#events.transmitReady?.();
  }

  #scheduleData(s: StreamState): void {
    if (s.scheduled || this.#terminating) return;
    s.scheduled = true;
    this.#ready.push(s);
    this.#events.transmitReady?.();
  }

  // --- lifetime ---

  #release(s: StreamState): void {
    if (this.#streams.get(s.id) === s) this.#streams.delete(s.id);
    try {
      this.#policy.onRelease?.(s);
    } finally {
      this.#maybeFinish();
    }
  }

  #endInfo(fallback: SessionCloseInfo): SessionCloseInfo {
    if (this.#goAwayReceived !== null) {
      return { reason: "remote-goaway", goAwayCode: this.#goAwayReceived };
    }
    if (this.#goAwaySent !== null) return { reason: "local", goAwayCode: this.#goAwaySent };
    return fallback;
  }

  /** Going away and the last stream is done: end once everything queued is written. */
  #maybeFinish(): void {
    if (this.#finishing || this.#terminating || !this.isGoingAway) return;
    if (this.#streams.size > 0) return;
    this.#finishing = true;
    this.#checkIdle();
  }

  /** Ends what waits for the writes to drain (a finishing session, an ending one's GoAway). */
  #checkIdle(): void {
    if (this.#closed || this.#writeStarted >= 0 || this.#detached) return;
    if (this.#terminating) {
      if (this.#control.length === 0) this.#finishClose();
    } else if (this.#finishing && !this.wantsTransmit) {
      this.#terminate(this.#endInfo({ reason: "local" }), null);
    }
  }

  /**
   * Ends the session: fails streams and pings, and, with `goAway`, queues a GoAway with its
   * code and waits for it to be written until its deadline; then `closed`.
   */
  /**
   * The transport is lost (timed out): a resumable session detaches, any other ends.
   */
  #lost(info: SessionCloseInfo): void {
    if (!this.#detach(info)) this.#terminate(info, null);
  }

  /** Detaches a resumable session that is not ending or going away; false otherwise. */
  #detach(info: SessionCloseInfo): boolean {
    if (this.#retain === null || this.#terminating || this.isGoingAway) return false;
    if (this.#detached) return true;
    this.#detached = true;
    this.#detachInfo = info;
    this.#writeStarted = -1;
    this.#replayAt = -1;
    this.#keepaliveDue = null;
    this.#keepaliveDeadline = null;
    // Its answer, if the peer got it, would time the outage, not the path.
    this.#pings.delete(this.#keepaliveOpaque);
    this.#keepaliveOpaque = -1;
    this.#ackNow = false;
    this.#ackDeadline = null;
    this.#events.detached?.(info);
    return true;
  }

  #terminate(
    info: SessionCloseInfo,
    goAway: { code: number; deadline: number } | null,
  ): void {
    if (this.#terminating) return;
    this.#terminating = true;
    this.#retain?.clear();
    this.#closeInfo = info;
    this.#keepaliveDue = null;
    this.#keepaliveDeadline = null;
    const describe = info.error ? `${info.reason}: ${info.error.message}` : info.reason;
    const err = new SessionClosedError(`session closed (${describe})`, { cause: info.error });
    this.#closeError = err;
    for (const s of [...this.#streams.values()]) s.sessionClosed(err);
    this.#streams.clear();
    for (const s of this.#backlog) {
      if (!s.released) s.sessionClosed(err);
    }
    this.#backlog = [];
    for (const s of this.#ready) s.scheduled = false;
    this.#ready = [];
    this.#pings.clear();
    this.#events.ending?.(err);
    this.#events.acceptReady?.();
    if (goAway !== null && this.#goAwaySent === null) {
      this.#goAwaySent = goAway.code;
      if (info.reason === "local") info.goAwayCode = goAway.code;
      this.#control = this.#control.filter((c) => c.type === FrameType.GoAway);
      this.#control.push({ type: FrameType.GoAway, flags: 0, id: 0, length: goAway.code });
      this.#flushDeadline = goAway.deadline;
      this.#events.transmitReady?.();
      this.#events.timeoutChanged?.();
      return;
    }
    this.#finishClose();
  }

  #finishClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#flushDeadline = null;
    this.#control = [];
    this.#events.closed?.(this.#closeInfo!);
  }
}
