/**
 * A yamux session over one byte-stream transport (a port-forward WebSocket): many
 * {@linkcode Stream}s, each flow-controlled with its own credit window, sharing one writer
 * that interleaves frames fairly and sends control frames (window updates, ping answers,
 * resets) ahead of bulk data.
 *
 * @module
 */
import type { Conn } from "../stack/dialer.ts";
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
import { type OutChunk, Stream, type StreamHost } from "./stream.ts";

/** Why and how a session ended; what {@linkcode Session.closed} resolves with. */
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

interface _Control {
  type: FrameType;
  flags: number;
  id: number;
  length: number;
}

interface _PendingPing {
  start: number;
  resolve: (rtt: number) => void;
  reject: (e: Error) => void;
}

const EMPTY = new Uint8Array(0);

/** Size of the reused buffer frames are gathered in before one transport write. */
const BATCH_BYTES = 256 * 1024;
/** Largest Data payload this side sends in one frame. */
const MAX_DATA_FRAME = 64 * 1024;
/** Transport read buffer. */
const READ_BYTES = 256 * 1024;
/** How long an abortive close waits for its GoAway to be written. */
const CLOSE_FLUSH_MS = 250;
/** Control frames queued before the session gives up on a peer that does not read. */
const MAX_CONTROL_QUEUE = 65536;
/** Round trip assumed by window tuning before the first ping answer. */
const DEFAULT_RTT_MS = 50;

/**
 * A multiplexed session. The transport must not keep a buffer passed to `write` after the
 * write resolved (as with `Deno.Conn`). Reading starts at once; a ping is sent at start to
 * learn the round-trip time for window tuning. Never throws out of its own loops: every
 * failure ends the session and resolves {@linkcode Session.closed}.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "./pipe.ts";
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
  readonly stats: SessionStats = {
    streamsOpened: 0,
    streamsAccepted: 0,
    bytesIn: 0,
    bytesOut: 0,
    lastRttMs: null,
    bufferedBytes: 0,
  };

  #transport: Conn;
  #o: ResolvedSessionOptions;
  #policy: SessionPolicy;
  #host: StreamHost;
  #streams = new Map<number, Stream>();
  #nextId: number;
  #lastInboundId = 0;
  #backlog: Stream[] = [];
  #acceptWaiters: (() => void)[] = [];

  #control: _Control[] = [];
  #ready: Stream[] = [];
  /** The batch with the transport's headroom in front (see `Conn.writeHeadroom`). */
  #batchBuf: Uint8Array;
  #headroom: number;
  #batch: Uint8Array;
  #writerWake: (() => void) | null = null;
  #writerIdle = true;
  #flushWaiters: (() => void)[] = [];
  /** When the pending transport write began (`performance.now()`), or -1. */
  #writeStarted = -1;
  #watchdog: ReturnType<typeof setTimeout> | undefined;

  #pings = new Map<number, _PendingPing>();
  #nextPing = 0;
  #keepaliveTimer: ReturnType<typeof setInterval> | undefined;
  #keepaliveTimeout: ReturnType<typeof setTimeout> | undefined;
  #keepalivePending = false;

  #goAwaySent: number | null = null;
  #goAwayReceived: number | null = null;
  #finishing = false;
  #terminating = false;
  #closeError: SessionClosedError | null = null;
  #resolveClosed!: (info: SessionCloseInfo) => void;

  /** `policy` limits what the peer's streams may hold (see {@linkcode SessionPolicy}). */
  constructor(transport: Conn, options: SessionOptions, policy: SessionPolicy = {}) {
    this.#transport = transport;
    this.#headroom = transport.writeWithHeadroom ? transport.writeHeadroom ?? 0 : 0;
    this.#batchBuf = new Uint8Array(this.#headroom + BATCH_BYTES);
    this.#batch = this.#batchBuf.subarray(this.#headroom);
    this.#o = resolveSessionOptions(options);
    this.#policy = policy;
    this.#nextId = this.#o.client ? 1 : 2;
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
    const stats = this.stats;
    this.#host = {
      options: this.#o,
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
    this.#writeLoop();
    this.#readLoop();
    this.ping().catch(() => {});
    if (this.#o.keepaliveIntervalMs > 0) {
      this.#keepaliveTimer = setInterval(() => this.#keepaliveTick(), this.#o.keepaliveIntervalMs);
    }
  }

  /** True once the session has ended or is ending (not merely going away). */
  get isClosed(): boolean {
    return this.#terminating;
  }

  /** True once a GoAway was sent or received: no new streams either way. */
  get isGoingAway(): boolean {
    return this.#goAwaySent !== null || this.#goAwayReceived !== null;
  }

  /** Streams in the session's table (open, half-closed or waiting to be accepted). */
  get numStreams(): number {
    return this.#streams.size;
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
      if (this.#terminating) {
        throw new SessionClosedError("open stream: session closed", { cause: this.#closeError });
      }
      if (this.isGoingAway) throw new SessionClosedError("open stream: session is going away");
      if (this.#streams.size >= this.#o.maxStreams) {
        throw new RangeError(`open stream: ${this.#o.maxStreams} streams already open`);
      }
      if (this.#nextId > 0xffffffff) throw new SessionClosedError("open stream: ids exhausted");
      const id = this.#nextId;
      this.#nextId += 2;
      const s = new Stream(this.#host, id, true);
      this.#streams.set(id, s);
      this.stats.streamsOpened++;
      s._sendOpenFlag(Flag.SYN);
      // Queued in the same turn as the SYN, so both leave in one transport write: a request on
      // a new stream costs one round trip, not two (a WebSocket with Nagle on holds a second
      // small write until the first is acknowledged).
      if (options.initial !== undefined || options.closeWrite) {
        s._queueInitial(options.initial ?? new Uint8Array(), options.closeWrite ?? false);
      }
      return Promise.resolve(s);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The next stream the peer opened, or null once the session is closed or going away. */
  async accept(): Promise<Stream | null> {
    while (true) {
      while (this.#backlog.length > 0) {
        const s = this.#backlog.shift()!;
        if (s.released && s.bufferedBytes === 0) continue;
        this.stats.streamsAccepted++;
        if (!s.released) s._sendOpenFlag(Flag.ACK);
        return s;
      }
      if (this.#terminating || this.isGoingAway) return null;
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
    if (this.#terminating) {
      return Promise.reject(
        new SessionClosedError("ping: session closed", { cause: this.#closeError }),
      );
    }
    const opaque = this.#nextPing;
    this.#nextPing = (this.#nextPing + 1) >>> 0;
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => {
        this.#pings.delete(opaque);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pings.set(opaque, {
        start: performance.now(),
        resolve: (rtt) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(rtt);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
      this.#sendControl(FrameType.Ping, Flag.SYN, 0, opaque);
    });
  }

  /**
   * Sends GoAway: from now on no new streams either way; existing streams finish, and the
   * session ends (reason `local`) when the last one is done. Resolves once GoAway is written.
   */
  async goAway(code: number = GoAwayCode.Normal): Promise<void> {
    if (this.#terminating || this.#goAwaySent !== null) return;
    this.#goAwaySent = code;
    this.#sendControl(FrameType.GoAway, 0, 0, code);
    this.#wakeAcceptors();
    await this.#flush();
    this.#maybeFinish();
  }

  /**
   * Ends the session at once: every stream ends with {@linkcode SessionClosedError}, a GoAway
   * is sent if the transport takes it quickly, and the transport is closed. Resolves when
   * {@linkcode Session.closed} has.
   */
  async close(reason?: Error): Promise<void> {
    await this.#terminate(
      reason ? { reason: "local", error: reason } : { reason: "local" },
      this.#goAwaySent === null ? GoAwayCode.Normal : undefined,
      CLOSE_FLUSH_MS,
    );
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- writer ---

  #sendControl(type: FrameType, flags: number, id: number, length: number): void {
    if (this.#terminating && type !== FrameType.GoAway) return;
    if (this.#control.length >= MAX_CONTROL_QUEUE) {
      // The peer keeps asking for answers (pings, resets) but does not read them.
      this.#terminate({
        reason: "transport-error",
        error: new Error(`control queue over ${MAX_CONTROL_QUEUE} frames: peer is not reading`),
      });
      return;
    }
    this.#control.push({ type, flags, id, length });
    this.#wakeWriter();
  }

  #scheduleData(s: Stream): void {
    if (s._inReady || this.#terminating) return;
    s._inReady = true;
    this.#ready.push(s);
    this.#wakeWriter();
  }

  #wakeWriter(): void {
    const w = this.#writerWake;
    if (w) {
      this.#writerWake = null;
      w();
    }
  }

  /** Resolves when every queued frame has been written (or the writer stopped). */
  #flush(): Promise<void> {
    if (this.#writerIdle && this.#control.length === 0 && this.#ready.length === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#flushWaiters.push(resolve));
  }

  #fillBatch(): number {
    const batch = this.#batch;
    let len = 0;
    const control = this.#control;
    let ci = 0;
    while (ci < control.length && len + HEADER_LENGTH <= BATCH_BYTES) {
      const c = control[ci++];
      writeHeader(batch, len, c.type, c.flags, c.id, c.length);
      len += HEADER_LENGTH;
    }
    if (ci === control.length) control.length = 0;
    else control.splice(0, ci);
    const ready = this.#ready;
    while (ready.length > 0) {
      const room = BATCH_BYTES - len - HEADER_LENGTH;
      if (room < 0) break;
      const s = ready[0];
      const c: OutChunk | undefined = s._out[0];
      if (c === undefined) {
        ready.shift();
        s._inReady = false;
        continue;
      }
      const left = c.data.length - c.off;
      if (left > 0 && room < Math.min(left, 4096)) break;
      const n = Math.min(left, MAX_DATA_FRAME, room);
      const end = c.off + n === c.data.length;
      writeHeader(batch, len, FrameType.Data, end && c.fin ? Flag.FIN : 0, s.id, n);
      len += HEADER_LENGTH;
      if (n > 0) {
        batch.set(c.data.subarray(c.off, c.off + n), len);
        len += n;
        c.off += n;
      }
      ready.shift();
      if (end) {
        s._out.shift();
        c.resolve?.();
      }
      if (s._out.length > 0) ready.push(s);
      else s._inReady = false;
    }
    return len;
  }

  async #writeLoop(): Promise<void> {
    try {
      while (!this.#terminating || this.#control.length > 0) {
        if (this.#control.length === 0 && this.#ready.length === 0) {
          this.#writerIdle = true;
          const ws = this.#flushWaiters;
          this.#flushWaiters = [];
          for (const w of ws) w();
          if (this.#terminating) break;
          await new Promise<void>((resolve) => this.#writerWake = resolve);
          continue;
        }
        this.#writerIdle = false;
        const len = this.#fillBatch();
        if (len === 0) continue;
        await this.#transportWrite(len);
        this.stats.bytesOut += len;
      }
    } catch (e) {
      this.#terminate({ reason: "transport-error", error: asError(e) });
    } finally {
      this.#writerIdle = true;
      const ws = this.#flushWaiters;
      this.#flushWaiters = [];
      for (const w of ws) w();
    }
  }

  /** Writes the first `len` bytes of the batch. */
  async #transportWrite(len: number): Promise<void> {
    const buf = this.#batch.subarray(0, len);
    const head = this.#headroom;
    let off = 0;
    this.#writeStarted = performance.now();
    this.#armWatchdog();
    try {
      while (off < buf.length) {
        // With headroom the transport writes straight from the batch (one whole write; if it
        // takes less, the rest goes by plain `write`, as the bytes in front are payload then).
        off += await (off === 0 && head > 0
          ? this.#transport.writeWithHeadroom!(this.#batchBuf.subarray(0, head + len))
          : this.#transport.write(buf.subarray(off)));
      }
    } finally {
      this.#writeStarted = -1;
    }
  }

  /**
   * Ends the session when a transport write takes longer than `writeTimeoutMs`. One timer for
   * all writes, not one per write: it re-arms itself for the write pending when it fires and
   * lapses when none is.
   */
  #armWatchdog(): void {
    if (this.#watchdog !== undefined) return;
    const ms = this.#o.writeTimeoutMs;
    const check = () => {
      this.#watchdog = undefined;
      if (this.#writeStarted < 0 || this.#terminating) return;
      const left = this.#writeStarted + ms - performance.now();
      if (left > 0) {
        this.#watchdog = setTimeout(check, left);
        return;
      }
      this.#terminate({
        reason: "transport-error",
        error: new Error(`transport write did not finish within ${ms} ms`),
      });
    };
    this.#watchdog = setTimeout(check, ms);
  }

  // --- reader ---

  async #readLoop(): Promise<void> {
    // A transport that hands out its own buffers (a WebSocket's messages) is read without a
    // copy, and payloads stay views of them (`Decoder.push`).
    const transport = this.#transport;
    const owned = transport.readChunk !== undefined;
    const buf = owned ? EMPTY : new Uint8Array(READ_BYTES);
    const decoder = new Decoder({ maxFrameSize: this.#o.maxFrameSize });
    while (!this.#terminating) {
      let chunk: Uint8Array | null;
      try {
        if (owned) chunk = await transport.readChunk!(READ_BYTES);
        else {
          const n = await transport.read(buf);
          chunk = n === null ? null : buf.subarray(0, n);
        }
      } catch (e) {
        this.#terminate({ reason: "transport-error", error: asError(e) });
        return;
      }
      if (this.#terminating) return;
      if (chunk === null) {
        this.#terminate(this.#endInfo({ reason: "transport-eof" }));
        return;
      }
      this.stats.bytesIn += chunk.length;
      try {
        decoder.push(chunk, owned);
        let f: Frame | null;
        while (!this.#terminating && (f = decoder.next()) !== null) this.#handle(f);
      } catch (e) {
        if (e instanceof ProtocolError) {
          this.#terminate({ reason: "protocol-error", error: e }, e.code, this.#o.writeTimeoutMs);
        } else {
          this.#terminate(
            { reason: "protocol-error", error: asError(e) },
            GoAwayCode.InternalError,
            this.#o.writeTimeoutMs,
          );
        }
        return;
      }
    }
  }

  #handle(f: Frame): void {
    switch (f.type) {
      case FrameType.Data:
      case FrameType.WindowUpdate:
        this.#handleStreamFrame(f);
        return;
      case FrameType.Ping:
        if (f.flags === Flag.SYN) {
          this.#sendControl(FrameType.Ping, Flag.ACK, 0, f.length);
        } else {
          const p = this.#pings.get(f.length);
          if (p) {
            this.#pings.delete(f.length);
            const rtt = performance.now() - p.start;
            this.stats.lastRttMs = rtt;
            p.resolve(rtt);
          }
        }
        return;
      case FrameType.GoAway:
        this.#onGoAway(f.length);
        return;
    }
  }

  #handleStreamFrame(f: Frame): void {
    const id = f.streamId;
    let s = this.#streams.get(id);
    if (f.flags & Flag.SYN) {
      if (s) throw new ProtocolError(`stream ${id}: SYN for a stream already open`);
      if ((id & 1) === (this.#o.client ? 1 : 0)) {
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
        this.isGoingAway || this.#streams.size >= this.#o.maxStreams ||
        this.#backlog.length >= this.#o.acceptBacklog
      ) {
        this.#sendControl(FrameType.WindowUpdate, Flag.RST, id, 0);
        return;
      }
      s = new Stream(this.#host, id, false);
      if (this.#policy.inboundReceiveLimit !== undefined) {
        s.limitReceive(this.#policy.inboundReceiveLimit);
      }
      this.#streams.set(id, s);
      this.#backlog.push(s);
      this.#wakeAcceptors();
    } else if (s === undefined) {
      const ours = (id & 1) === (this.#o.client ? 1 : 0);
      if (ours ? id < this.#nextId : id <= this.#lastInboundId) return; // in flight after close
      throw new ProtocolError(
        `stream ${id}: ${
          f.type === FrameType.Data ? "data" : "window update"
        } for a stream never opened`,
      );
    }
    if (f.type === FrameType.Data) s._onData(f);
    else s._onWindowUpdate(f.length);
    if (f.flags & (Flag.ACK | Flag.FIN | Flag.RST)) s._onFlags(f.flags);
  }

  #onGoAway(code: number): void {
    if (this.#goAwayReceived !== null) return;
    this.#goAwayReceived = code;
    this.#wakeAcceptors();
    if (code !== GoAwayCode.Normal) {
      this.#terminate({
        reason: "remote-goaway",
        goAwayCode: code,
        error: new Error(`peer went away with code ${code}`),
      });
      return;
    }
    this.#maybeFinish();
  }

  // --- lifetime ---

  #release(s: Stream): void {
    if (this.#streams.get(s.id) === s) this.#streams.delete(s.id);
    try {
      this.#policy.onRelease?.(s);
    } finally {
      this.#maybeFinish();
    }
  }

  #wakeAcceptors(): void {
    const ws = this.#acceptWaiters;
    this.#acceptWaiters = [];
    for (const w of ws) w();
  }

  #endInfo(fallback: SessionCloseInfo): SessionCloseInfo {
    if (this.#goAwayReceived !== null) {
      return { reason: "remote-goaway", goAwayCode: this.#goAwayReceived };
    }
    if (this.#goAwaySent !== null) return { reason: "local", goAwayCode: this.#goAwaySent };
    return fallback;
  }

  #maybeFinish(): void {
    if (this.#finishing || this.#terminating || !this.isGoingAway) return;
    if (this.#streams.size > 0) return;
    this.#finishing = true;
    (async () => {
      await this.#flush();
      await this.#terminate(this.#endInfo({ reason: "local" }));
    })();
  }

  #keepaliveTick(): void {
    if (this.#keepalivePending || this.#terminating) return;
    this.#keepalivePending = true;
    const ms = this.#o.keepaliveTimeoutMs;
    this.#keepaliveTimeout = setTimeout(() => {
      this.#keepaliveTimeout = undefined;
      this.#terminate({
        reason: "keepalive-timeout",
        error: new Error(`keepalive: no ping answer within ${ms} ms`),
      });
    }, ms);
    this.ping().then(
      () => {},
      () => {},
    ).finally(() => {
      clearTimeout(this.#keepaliveTimeout);
      this.#keepaliveTimeout = undefined;
      this.#keepalivePending = false;
    });
  }

  /**
   * Ends the session: fails streams and pending calls, writes a GoAway with `goAwayCode` (when
   * given, waiting at most `flushMs`), closes the transport and resolves `closed`.
   */
  async #terminate(info: SessionCloseInfo, goAwayCode?: number, flushMs = 0): Promise<void> {
    if (this.#terminating) {
      await this.closed;
      return;
    }
    this.#terminating = true;
    clearInterval(this.#keepaliveTimer);
    clearTimeout(this.#keepaliveTimeout);
    clearTimeout(this.#watchdog);
    const describe = info.error ? `${info.reason}: ${info.error.message}` : info.reason;
    const err = new SessionClosedError(`session closed (${describe})`, { cause: info.error });
    this.#closeError = err;
    for (const s of [...this.#streams.values()]) s._sessionClosed(err);
    this.#streams.clear();
    for (const s of this.#backlog) {
      if (!s.released) s._sessionClosed(err);
    }
    this.#backlog = [];
    for (const s of this.#ready) s._inReady = false;
    this.#ready = [];
    for (const p of this.#pings.values()) p.reject(err);
    this.#pings.clear();
    this.#wakeAcceptors();
    if (goAwayCode !== undefined && this.#goAwaySent === null) {
      this.#goAwaySent = goAwayCode;
      if (info.reason === "local") info.goAwayCode = goAwayCode;
      this.#control = this.#control.filter((c) => c.type === FrameType.GoAway);
      this.#control.push({ type: FrameType.GoAway, flags: 0, id: 0, length: goAwayCode });
      this.#wakeWriter();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#flush(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, flushMs)),
      ]);
      clearTimeout(timer);
    }
    this.#control = [];
    this.#wakeWriter();
    try {
      this.#transport.close();
    } catch {
      // already closed
    }
    this.#resolveClosed(info);
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
