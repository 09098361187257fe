/**
 * A small pool of sessions, one per transport (port-forward WebSocket), so one slow flow does
 * not stall the others. New streams go to the live session with the fewest streams; a session
 * that ends is replaced in the background, retrying with backoff.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import { systemClock, type TimerClock as Clock } from "../io/clock.ts";
import type { SessionOptions } from "./config.ts";
import { SessionClosedError } from "./errors.ts";
import { Session, type SessionCloseInfo } from "./session.ts";
import type { Stream } from "./stream.ts";

/** Options for {@linkcode SessionPool}. */
export interface SessionPoolOptions {
  /** Sessions to keep open. */
  size: number;
  /** Makes one transport; the signal aborts when the pool closes. */
  connect: (signal: AbortSignal) => Promise<Conn>;
  /**
   * Options for every session (this side is always the client, and accepts no stream: its
   * `acceptBacklog` is 0).
   */
  session: Omit<SessionOptions, "client" | "acceptBacklog">;
  /** Called whenever a session of the pool ends (also when the pool closes). */
  onSessionClosed?: (info: SessionCloseInfo) => void;
  /** First delay between reconnect attempts, ms. Default 100. */
  retryMinMs?: number;
  /** Longest delay between reconnect attempts, ms. Default 5000. */
  retryMaxMs?: number;
  /**
   * Where reconnect backoff (and, unless `session.clock` says otherwise, every session) takes
   * its time from. Default the system clock; tests pass a fake one.
   */
  clock?: Clock;
}

/**
 * The pool.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "../io/pipe.ts";
 * import { Session } from "./session.ts";
 * import { SessionPool } from "./pool.ts";
 * const servers: Session[] = [];
 * await using pool = new SessionPool({
 *   size: 2,
 *   session: {},
 *   connect: () => {
 *     const [a, b] = memoryPipe();
 *     servers.push(new Session(b, { client: false }));
 *     return Promise.resolve(a);
 *   },
 * });
 * await pool.start();
 * const s = await pool.open();
 * s.reset();
 * if (pool.sessions.length !== 2) throw new Error("unexpected");
 * await pool.close();
 * await Promise.all(servers.map((x) => x.close()));
 * ```
 */
export class SessionPool implements AsyncDisposable {
  #o: SessionPoolOptions;
  #clock: Clock;
  #slots: (Session | null)[];
  #abort = new AbortController();
  #waiters: (() => void)[] = [];
  #replacing = new Set<Promise<void>>();
  #closing = false;
  #shortLived: number[] = [];

  constructor(options: SessionPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`session pool: size must be a positive integer, got ${options.size}`);
    }
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#slots = new Array(options.size).fill(null);
  }

  /** The live sessions (closed ones are gone; replacements appear when connected). */
  get sessions(): readonly Session[] {
    return this.#slots.filter((s): s is Session => s !== null && !s.isClosed);
  }

  /**
   * Opens `size` sessions. Rejects with the connect error if the first one fails; later ones
   * that fail are retried in the background.
   */
  async start(): Promise<void> {
    if (this.#closing) throw new SessionClosedError("session pool: closed");
    const conn = await this.#o.connect(this.#abort.signal);
    this.#attach(0, conn);
    await Promise.all(this.#slots.map(async (s, i) => {
      if (i === 0 || s !== null) return;
      try {
        this.#attach(i, await this.#o.connect(this.#abort.signal));
      } catch {
        this.#replace(i);
      }
    }));
  }

  /**
   * Opens a stream on the live session with the fewest streams, waiting for one to be
   * (re)connected when none is live. Rejects with {@linkcode SessionClosedError} once the pool
   * is closed, or with the signal's reason. Takes the signal itself or, like
   * {@linkcode Session.open}, an options object holding it.
   */
  async open(
    signal?: AbortSignal | { signal?: AbortSignal; initial?: Uint8Array; closeWrite?: boolean },
  ): Promise<Stream> {
    let initial: Uint8Array | undefined;
    let closeWrite: boolean | undefined;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      initial = signal.initial;
      closeWrite = signal.closeWrite;
      signal = signal.signal;
    }
    while (true) {
      signal?.throwIfAborted();
      if (this.#closing) throw new SessionClosedError("open stream: session pool closed");
      let best: Session | null = null;
      for (const s of this.#slots) {
        if (s === null || s.isClosed || s.isGoingAway) continue;
        if (best === null || s.numStreams < best.numStreams) best = s;
      }
      if (best === null) {
        await this.#waitForSession(signal);
        continue;
      }
      try {
        return await best.open({ signal, initial, closeWrite });
      } catch (e) {
        if (e instanceof SessionClosedError) continue; // raced with its end; try another
        throw e;
      }
    }
  }

  /** Pings every live session; resolves with the smallest round trip, ms. */
  async ping(): Promise<number> {
    const live = this.sessions;
    if (live.length === 0) throw new SessionClosedError("ping: no live session in the pool");
    const results = await Promise.allSettled(live.map((s) => s.ping()));
    let best: number | null = null;
    for (const r of results) {
      if (r.status === "fulfilled" && (best === null || r.value < best)) best = r.value;
    }
    if (best === null) throw (results[0] as PromiseRejectedResult).reason;
    return best;
  }

  /** Closes every session and stops reconnecting. */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#abort.abort(new SessionClosedError("session pool closed"));
      this.#wake();
    }
    await Promise.all(this.#slots.map((s) => s?.close()));
    await Promise.all([...this.#replacing]);
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #attach(i: number, conn: Conn): void {
    if (this.#closing) {
      conn.close();
      return;
    }
    // Nothing on the far side may open streams to this side: an inbound SYN is answered with
    // RST at once and costs no buffer (the default backlog would hold up to 256 streams of up
    // to a window each).
    const clock = this.#clock;
    const session = new Session(conn, {
      clock,
      ...this.#o.session,
      client: true,
      acceptBacklog: 0,
    });
    const born = clock.now();
    this.#slots[i] = session;
    this.#wake();
    session.closed.then((info) => {
      // A transport that dies right after opening (the far end refuses) counts as a failure, so
      // the next attempts back off instead of hammering the API server.
      this.#shortLived[i] = clock.now() - born < 2_000 ? (this.#shortLived[i] ?? 0) + 1 : 0;
      if (this.#slots[i] === session) this.#slots[i] = null;
      try {
        this.#o.onSessionClosed?.(info);
      } catch {
        // a throwing callback must not stop reconnection
      }
      if (!this.#closing) this.#replace(i);
    });
  }

  #replace(i: number): void {
    const p = this.#reconnect(i).finally(() => this.#replacing.delete(p));
    this.#replacing.add(p);
  }

  async #reconnect(i: number): Promise<void> {
    const signal = this.#abort.signal;
    const max = this.#o.retryMaxMs ?? 5000;
    let delay = Math.min(max, (this.#o.retryMinMs ?? 100) * 2 ** (this.#shortLived[i] ?? 0));
    if ((this.#shortLived[i] ?? 0) > 0) await _sleep(this.#clock, delay, signal);
    while (!signal.aborted) {
      try {
        const conn = await this.#o.connect(signal);
        this.#attach(i, conn);
        return;
      } catch {
        await _sleep(this.#clock, delay, signal);
        delay = Math.min(delay * 2, max);
      }
    }
  }

  #wake(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }

  #waitForSession(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }
}

function _sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clock.clearTimer(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = clock.setTimer(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
