/**
 * A small pool of sessions, one per transport (port-forward WebSocket), so one slow flow does
 * not stall the others. New streams go to the live session with the fewest streams; a session
 * that ends is replaced in the background, retrying with backoff.
 *
 * With `resume`, sessions are resumable (protocol 2, `hello.ts`): a session whose transport is
 * lost keeps its streams, detached, and the pool gets it back on a new transport (`resumer.ts`)
 * within the grace period; only when that cannot happen (refused, grace over) does the session
 * end, its streams with it, and a fresh one take its place. A manager that speaks protocol 1
 * only is recognised at the first connect, and the pool goes on without resumption.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import { systemClock, type TimerClock as Clock } from "../io/clock.ts";
import type { SessionOptions } from "./config.ts";
import { SessionClosedError } from "./errors.ts";
import { Session, type SessionCloseInfo, type SessionPolicy } from "./session.ts";
import type { Stream } from "./stream.ts";
import {
  HandshakeError,
  helloNew,
  LegacyPeerError,
  newSessionKey,
  type SessionKey,
} from "./hello.ts";
import { abortable, type ResumeEvent, Resumer } from "./resumer.ts";

export type { ResumeEvent } from "./resumer.ts";

/** Resumption settings of a {@linkcode SessionPool}. */
export interface PoolResumeOptions {
  /** Seconds to hold a detached session's streams, asked of the manager (it may grant less). */
  graceSeconds: number;
  /** Told when sessions detach, resume, are refused or expire, and when the peer is legacy. */
  onEvent?: (e: ResumeEvent) => void;
}

/** One slot's session and what resuming it needs. */
interface _Slot {
  session: Session;
  /** The key of a resumable session, or null for a plain one. */
  key: SessionKey | null;
  /** Grace granted by the manager, seconds. */
  graceSeconds: number;
  /** The manager's retain limit, bytes. */
  retainLimit: number;
  resumer: Resumer | null;
}

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
  /** One policy for every session of the pool (a `WindowBudget`'s, on the laptop). Default none. */
  policy?: SessionPolicy;
  /** Called whenever a session of the pool ends (also when the pool closes). */
  onSessionClosed?: (info: SessionCloseInfo) => void;
  /** Resumable sessions (protocol 2); without it, plain yamux (protocol 1). */
  resume?: PoolResumeOptions;
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
  #slots: (_Slot | null)[];
  /** The peer speaks protocol 1 only (learned at a connect): no resumption. */
  #legacy = false;
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

  /**
   * The sessions not closed: live ones and detached ones (see `Session.isDetached`); closed
   * ones are gone, and replacements appear when connected.
   */
  get sessions(): readonly Session[] {
    return this.#slots.flatMap((s) => s !== null && !s.session.isClosed ? [s.session] : []);
  }

  /**
   * Whether sessions resume: `true` (protocol 2 agreed), `false` (off, or the manager speaks
   * protocol 1 only), or null before the first session.
   */
  get resumable(): boolean | null {
    if (this.#o.resume === undefined || this.#legacy) return false;
    return this.#slots.some((s) => s !== null) ? true : null;
  }

  /** Bytes a session keeps at most to send again (the manager's; 0 without resumption). */
  get retainLimit(): number {
    for (const s of this.#slots) if (s?.key) return s.retainLimit;
    return 0;
  }

  /** The grace period the manager granted, seconds (0 without resumption). */
  get graceSeconds(): number {
    for (const s of this.#slots) if (s?.key) return s.graceSeconds;
    return 0;
  }

  /** Detached sessions and when each one's grace period ends (clock ms). */
  get detached(): { session: Session; deadline: number }[] {
    return this.#slots.flatMap((s) =>
      s !== null && s.resumer !== null && s.session.isDetached && !s.session.isClosed
        ? [{ session: s.session, deadline: s.resumer.deadline }]
        : []
    );
  }

  /**
   * The network changed or the machine woke up: detached sessions try at once (no backoff), and
   * every live one must answer a ping within `timeoutMs` or is taken as lost (and, resumable,
   * resumes over a new transport).
   */
  nudge(timeoutMs = 1500): void {
    for (const s of this.#slots) {
      if (s === null || s.session.isClosed) continue;
      if (s.session.isDetached) {
        s.resumer?.nudge();
        continue;
      }
      const session = s.session;
      const t = new AbortController();
      const timer = this.#clock.setTimer(() => t.abort(), timeoutMs);
      session.ping({ signal: t.signal }).catch(() => {
        if (t.signal.aborted && !session.detach(new Error("no answer after a network change"))) {
          session.close(new Error("no answer after a network change"));
        }
      }).finally(() => this.#clock.clearTimer(timer));
    }
  }

  /**
   * Opens `size` sessions. Rejects with the connect error if the first one fails; later ones
   * that fail are retried in the background.
   */
  async start(): Promise<void> {
    if (this.#closing) throw new SessionClosedError("session pool: closed");
    await this.#connectSlot(0);
    await Promise.all(this.#slots.map(async (s, i) => {
      if (i === 0 || s !== null) return;
      try {
        await this.#connectSlot(i);
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
      for (const slot of this.#slots) {
        const s = slot?.session;
        if (s === undefined || s.isClosed || s.isGoingAway || s.isDetached) continue;
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
    const live = this.sessions.filter((s) => !s.isDetached);
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
    for (const s of this.#slots) s?.resumer?.stop();
    await Promise.all(this.#slots.map((s) => s?.session.close()));
    await Promise.all([...this.#replacing]);
  }

  /** Same as `close()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Connects slot `i`: a transport, the handshake of a new resumable session (unless off or the
   * peer is legacy: then a plain session, and with a legacy peer on a fresh transport).
   */
  async #connectSlot(i: number): Promise<void> {
    const signal = this.#abort.signal;
    let conn = await this.#o.connect(signal);
    const resume = this.#o.resume;
    if (resume === undefined || this.#legacy) return this.#attach(i, conn, null, 0, 0);
    const key = newSessionKey();
    try {
      const w = await abortable(helloNew(conn, key, resume.graceSeconds), signal, conn);
      return this.#attach(i, conn, key, w.graceSeconds, w.retainLimit);
    } catch (e) {
      conn.close();
      if (!(e instanceof LegacyPeerError)) {
        if (signal.aborted) throw e;
        throw new HandshakeError((e as Error).message, { cause: e });
      }
      this.#legacy = true;
      resume.onEvent?.({ kind: "legacy", message: e.message });
    }
    conn = await this.#o.connect(signal);
    this.#attach(i, conn, null, 0, 0);
  }

  #attach(
    i: number,
    conn: Conn,
    key: SessionKey | null,
    graceSeconds: number,
    retainLimit: number,
  ): void {
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
      resumable: key !== null,
      // What the client keeps matches what the manager keeps.
      ...(key !== null && retainLimit > 0
        ? { retainLimit: Math.max(128 * 1024, Math.min(retainLimit, 2 ** 31 - 1)) }
        : {}),
    }, this.#o.policy);
    const born = clock.now();
    const slot: _Slot = { session, key, graceSeconds, retainLimit, resumer: null };
    this.#slots[i] = slot;
    this.#wake();
    if (key !== null) {
      session.onDetached = (info) => {
        slot.resumer?.stop();
        slot.resumer = new Resumer({
          session,
          key,
          graceMs: graceSeconds * 1000,
          connect: this.#o.connect,
          clock,
          signal: this.#abort.signal,
          onEvent: (e) => {
            if (e.kind === "resumed") this.#wake();
            this.#o.resume?.onEvent?.(e);
          },
        });
        this.#o.resume?.onEvent?.({
          kind: "detached",
          streams: session.numStreams,
          reason: describeInfo(info),
          graceSeconds,
        });
      };
    }
    session.closed.then((info) => {
      slot.resumer?.stop();
      // A transport that dies right after opening (the far end refuses) counts as a failure, so
      // the next attempts back off instead of hammering the API server.
      this.#shortLived[i] = clock.now() - born < 2_000 ? (this.#shortLived[i] ?? 0) + 1 : 0;
      if (this.#slots[i] === slot) this.#slots[i] = null;
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
        await this.#connectSlot(i);
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

/** How a transport was lost, for a log line. */
export function describeInfo(info: SessionCloseInfo): string {
  return info.error ? `${info.reason}: ${info.error.message}` : info.reason;
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
