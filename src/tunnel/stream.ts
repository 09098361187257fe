/**
 * One multiplexed stream of a {@linkcode Session}: a {@linkcode Conn} with per-stream credit
 * flow control in both directions. The receive side buffers at most the window it has
 * advertised; the send side waits for credit before it queues bytes, so neither side grows
 * memory without bound.
 *
 * The handle only waits: the state (buffers, windows, half-closes) is the session core's
 * {@linkcode StreamState}, which wakes the handle's readers and writers when it changes.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import type { TimerClock as Clock } from "../io/clock.ts";
import type { StreamState, StreamWaker } from "./stream_state.ts";

const EMPTY = new Uint8Array(0);

let stateOf: (s: Stream) => StreamState;
let serve: (s: Stream) => void;
let wakeReader: (s: Stream) => void;
let wakeWriter: (s: Stream) => void;

/** What a read waits to fill: the caller's buffer (`read`) or the most bytes it takes (`readChunk`). */
type _Into = Uint8Array | number;
/** What a read resolves with: a count (`read`), bytes (`readChunk`), or null at end of stream. */
type _Got = number | Uint8Array | null;

/**
 * Settles a waiting read's promise. Only the promise's resolve function is kept, not its reject
 * function too (a pending read is what every idle relayed stream holds): a failed read resolves
 * it with a thenable that rejects, which rejects the promise one microtask later than `reject`
 * would.
 */
type _Settle = (got: _Got | PromiseLike<never>) => void;

/** A read made while another was pending: it waits behind it. */
interface _QueuedRead {
  into: _Into;
  settle: _Settle;
}

/** Rejects a waiting read's promise through its resolve function (see {@linkcode _Settle}). */
function rejectWith(settle: _Settle, error: unknown): void {
  settle({ then: (_, reject) => reject?.(error) } as PromiseLike<never>);
}

/**
 * What the streams of one session share: the session's clock, and the waker their states call
 * (one for all, so that a stream costs no closures of its own). @internal Made by `Session`.
 */
export class StreamDriver implements StreamWaker {
  constructor(readonly clock: Clock) {}

  readable(state: StreamState): void {
    wakeReader(state.handle as Stream);
  }

  writable(state: StreamState): void {
    wakeWriter(state.handle as Stream);
  }
}

// Streams whose pending read may now go on, in the order they were woken. Each wake queues one
// microtask that serves the oldest entry: the read goes on one tick after the wake, as an awaited
// promise would, and in the same order relative to other microtasks.
const due: (Stream | undefined)[] = [];
let dueHead = 0;
let dueTail = 0;

function serveDue(): void {
  const s = due[dueHead]!;
  due[dueHead++] = undefined;
  if (dueHead === dueTail) {
    dueHead = dueTail = 0;
    if (due.length > 1024) due.length = 0;
  }
  serve(s);
}

/**
 * A multiplexed stream. Get one from {@linkcode Session.open} or {@linkcode Session.accept};
 * the constructor is internal.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "../io/pipe.ts";
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
  // An idle stream with a read pending (as a relay keeps one) holds little: these fields, and
  // the pending read's promise with its resolve function. Queues and waiters are made only
  // while something waits in them.
  #st: StreamState;
  /** Where the pending read goes, or null when no read is pending. */
  #into: _Into | null = null;
  /** Settles the pending read's promise. */
  #settle: _Settle | null = null;
  /** Reads made while one was pending, oldest first; null when there are none. */
  #moreReads: _QueuedRead[] | null = null;
  /** The pending read waits in `due` to be served. */
  #due = false;
  /** The writer waiting for send window (writes go one at a time), or null. */
  #windowWake: (() => void) | null = null;
  /** Settles once the last write begun has finished; null when none is under way. */
  #writeChain: Promise<void> | null = null;

  static {
    stateOf = (s) => s.#st;
    serve = (s) => s.#serve();
    wakeReader = (s) => {
      if (s.#into === null || s.#due) return;
      s.#due = true;
      due[dueTail++] = s;
      queueMicrotask(serveDue);
    };
    wakeWriter = (s) => {
      const w = s.#windowWake;
      if (w === null) return;
      s.#windowWake = null;
      w();
    };
  }

  /** @internal Streams are made by {@linkcode Session}. */
  constructor(state: StreamState, driver: StreamDriver) {
    this.#st = state;
    state.waker = driver;
  }

  /** Stream id: odd when the client side opened it, even for the server side. */
  get id(): number {
    return this.#st.id;
  }

  /** Bytes received and not yet read. */
  get bufferedBytes(): number {
    return this.#st.bufferedBytes;
  }

  /** Current receive window (grows with auto-tuning up to `maxWindow`). */
  get receiveWindow(): number {
    return this.#st.receiveWindow;
  }

  /** Bytes this side may still send before the peer grants more. */
  get sendWindow(): number {
    return this.#st.sendWindow;
  }

  /** True once the peer acknowledged the stream (always true on the accepting side). */
  get established(): boolean {
    return this.#st.established;
  }

  /** True once the stream has left its session (both sides done, reset, or session closed). */
  get released(): boolean {
    return this.#st.released;
  }

  /** Bytes the receive window was granted beyond the spec's (at open and by auto-tuning). */
  get windowGrowth(): number {
    return this.#st.windowGrowth;
  }

  /**
   * Caps what the stream may buffer at `bytes`, below its window (null lifts the cap). The peer
   * is not told: data that would take the buffer past the cap resets the stream instead (as
   * does calling this with more than `bytes` already buffered). A server uses it to take only
   * the open request (and the little that may come with it) until it has answered: the yamux
   * window every stream starts with (256 KiB) is far more than a request needs.
   */
  limitReceive(bytes: number | null): void {
    this.#st.limitReceive(bytes);
  }

  /**
   * Reads into `p`. Resolves with the count, or null after the peer's FIN once all data is
   * consumed (or after `close()`). Rejects with {@linkcode StreamResetError} after a reset and
   * with {@linkcode SessionClosedError} when the session ended before the peer's FIN.
   */
  read(p: Uint8Array): Promise<number | null> {
    return this.#read(p) as Promise<number | null>;
  }

  /**
   * Like `read`, without the copy: resolves with the next received bytes (at most `max`) in a
   * buffer the caller now owns, or null after the peer's FIN once all data is consumed (or
   * after `close()`). Rejects as `read` does.
   */
  readChunk(max: number): Promise<Uint8Array | null> {
    return this.#read(max) as Promise<Uint8Array | null>;
  }

  /**
   * Writes all of `p`, waiting for send window as needed; resolves with `p.length` once every
   * byte has been handed to the session writer (then `p` may be reused). Rejects with
   * {@linkcode StreamResetError} after a reset, {@linkcode SessionClosedError} when the session
   * ended, and `Deno.errors.BrokenPipe` after `closeWrite()`/`close()`.
   */
  async write(p: Uint8Array): Promise<number> {
    if (p.length === 0) {
      this.#st.checkWritable();
      return 0;
    }
    const prev = this.#writeChain;
    let release!: () => void;
    const mine = this.#writeChain = new Promise<void>((r) => release = r);
    try {
      await prev;
      return await this.#writeAll(p);
    } finally {
      if (this.#writeChain === mine) this.#writeChain = null;
      release();
    }
  }

  async #writeAll(p: Uint8Array): Promise<number> {
    const st = this.#st;
    let off = 0;
    while (off < p.length) {
      st.checkWritable();
      if (st.sendWindow === 0) {
        await new Promise<void>((resolve) => this.#windowWake = resolve);
        continue;
      }
      const n = Math.min(st.sendWindow, p.length - off);
      const chunk = p.subarray(off, off + n);
      off += n;
      if (off < p.length) st.queue(chunk);
      // The last piece: done once it is copied into a frame (then `p` may be reused).
      else await new Promise<void>((resolve, reject) => st.queue(chunk, resolve, reject));
    }
    return p.length;
  }

  /** Sends FIN after the bytes already written: the peer reads end of stream. Idempotent. */
  async closeWrite(): Promise<void> {
    await this.#writeChain;
    const st = this.#st;
    if (st.writeDone) return;
    await new Promise<void>((resolve, reject) => st.closeWrite(resolve, reject));
  }

  /**
   * Closes the stream: sends FIN if not yet sent and stops reading (buffered and later data is
   * discarded, with credit returned so the peer can finish). The stream leaves the session
   * once the peer's FIN has arrived too.
   */
  close(): void {
    this.#st.close(this.#now());
  }

  /**
   * Aborts the stream both ways with RST; pending and later reads and writes reject (with
   * `reason` in the error's message, when given).
   */
  reset(reason?: string): void {
    this.#st.reset(reason);
  }

  /**
   * A read or readChunk: done at once when it can be, else it waits (behind a read already
   * waiting) until the stream's state wakes it.
   */
  #read(into: _Into): Promise<_Got> {
    try {
      const got = this.#take(into);
      if (got !== undefined) return Promise.resolve(got);
    } catch (e) {
      return Promise.reject(e);
    }
    const { promise, resolve: settle } = Promise.withResolvers<_Got>();
    if (this.#into === null) {
      this.#into = into;
      this.#settle = settle;
    } else (this.#moreReads ??= []).push({ into, settle });
    return promise;
  }

  /**
   * What a read into `into` gets now: a count or bytes, null at end of stream, or undefined when
   * it must wait. Throws why reads fail.
   */
  #take(into: _Into): _Got | undefined {
    const st = this.#st;
    if (st.readError) throw st.readError;
    if (st.bufferedBytes > 0) {
      const got = typeof into === "number" ? st.takeChunk(into) : st.copyOut(into);
      if (st.creditDue) st.returnCredit(this.#now());
      return got;
    }
    if (st.readEnded) return null;
    if (typeof into === "number") return into === 0 ? EMPTY : undefined;
    return into.length === 0 ? 0 : undefined;
  }

  /** The state changed (see `wakeReader`): the waiting reads that can go on do, oldest first. */
  #serve(): void {
    this.#due = false;
    while (this.#into !== null) {
      let got: _Got | undefined;
      let failed = false;
      let error: unknown;
      try {
        got = this.#take(this.#into);
        if (got === undefined) return;
      } catch (e) {
        failed = true;
        error = e;
      }
      const settle = this.#settle!;
      const next = this.#moreReads?.shift();
      if (next === undefined) {
        this.#into = this.#settle = null;
        this.#moreReads = null;
      } else {
        this.#into = next.into;
        this.#settle = next.settle;
      }
      if (failed) rejectWith(settle, error);
      else settle(got!);
    }
  }

  /** The session's time (its driver is the stream state's waker). */
  #now(): number {
    return (this.#st.waker as StreamDriver).clock.now();
  }
}

/**
 * The session core's state behind a stream handle: its offsets, queued bytes and windows, for
 * tests. @internal
 */
export function streamStateOf(stream: Stream): StreamState {
  return stateOf(stream);
}
