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
import type { StreamState } from "./stream_state.ts";

const EMPTY = new Uint8Array(0);

let stateOf: (s: Stream) => StreamState;

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
  /** Stream id: odd when the client side opened it, even for the server side. */
  readonly id: number;
  #st: StreamState;
  #clock: Clock;
  #readWaiters: (() => void)[] = [];
  #windowWaiters: (() => void)[] = [];
  #writeChain: Promise<void> = Promise.resolve();

  static {
    stateOf = (s) => s.#st;
  }

  /** @internal Streams are made by {@linkcode Session}. */
  constructor(state: StreamState, clock: Clock) {
    this.#st = state;
    this.#clock = clock;
    this.id = state.id;
    state.waker = {
      readable: () => {
        const ws = this.#readWaiters;
        if (ws.length === 0) return;
        this.#readWaiters = [];
        for (const w of ws) w();
      },
      writable: () => {
        const ws = this.#windowWaiters;
        if (ws.length === 0) return;
        this.#windowWaiters = [];
        for (const w of ws) w();
      },
    };
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

  /** Bytes auto-tuning added to the receive window beyond its opening size. */
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
  async read(p: Uint8Array): Promise<number | null> {
    const st = this.#st;
    while (true) {
      if (st.readError) throw st.readError;
      if (st.bufferedBytes > 0) {
        const n = st.copyOut(p);
        if (st.creditDue) st.returnCredit(this.#clock.now());
        return n;
      }
      if (st.readEnded) return null;
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
    const st = this.#st;
    while (true) {
      if (st.readError) throw st.readError;
      if (st.bufferedBytes > 0) {
        const c = st.takeChunk(max);
        if (st.creditDue) st.returnCredit(this.#clock.now());
        return c;
      }
      if (st.readEnded) return null;
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
      this.#st.checkWritable();
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
    const st = this.#st;
    let off = 0;
    while (off < p.length) {
      st.checkWritable();
      if (st.sendWindow === 0) {
        await new Promise<void>((resolve) => this.#windowWaiters.push(resolve));
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
    this.#st.close(this.#clock.now());
  }

  /**
   * Aborts the stream both ways with RST; pending and later reads and writes reject (with
   * `reason` in the error's message, when given).
   */
  reset(reason?: string): void {
    this.#st.reset(reason);
  }
}

/**
 * The session core's state behind a stream handle: its offsets, queued bytes and windows, for
 * tests. @internal
 */
export function streamStateOf(stream: Stream): StreamState {
  return stateOf(stream);
}
