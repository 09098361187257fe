/**
 * Getting a detached session back: new transports and the resume handshake (`hello.ts`), tried
 * often enough that the session moves again well within a second of the path's return, until
 * the grace period ends.
 *
 * While the path is down a connect may hang (a black hole drops the SYNs, and the kernel's next
 * SYN can be seconds away), so attempts overlap: a new one starts every `staggerMs` (at once on
 * {@linkcode Resumer.nudge}), each gives up after `attemptMs`, at most `maxParallel` at a time
 * (enough that one always starts on time: the path's return is used within `staggerMs`). An
 * attempt that fails fast (the API server answers, but with an error) does not start the next
 * one sooner: at most one connect per `staggerMs` reaches the API server.
 * The first transport that connects does the handshake; the others are dropped. A refusal (the
 * manager restarted or was replaced and knows no such session, the proof or the offsets do not
 * fit) or the end of the grace period closes the session, and with it its streams: their flows
 * end with a reset instead of hanging.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import type { TimerClock as Clock } from "../io/clock.ts";
import {
  helloResume,
  LegacyPeerError,
  RefuseCode,
  ResumeRefusedError,
  type SessionKey,
} from "./hello.ts";
import type { Session } from "./session.ts";

/** What happens to resumable sessions, for logs and `status`. */
export type ResumeEvent =
  /** The manager speaks protocol 1 only: sessions do not resume. */
  | { kind: "legacy"; message: string }
  /** A session lost its transport; its `streams` are held for `graceSeconds`. */
  | { kind: "detached"; streams: number; reason: string; graceSeconds: number }
  /** A session is back, `afterMs` after it detached, with its `streams`. */
  | { kind: "resumed"; streams: number; afterMs: number; attempts: number }
  /** The manager refused the resume: the session and its `streams` ended. */
  | { kind: "refused"; streams: number; reason: string }
  /** The grace period ended before the path came back: the session and its `streams` ended. */
  | { kind: "expired"; streams: number; graceSeconds: number };

/** Options for a {@linkcode Resumer}. */
export interface ResumerOptions {
  /** The detached session. */
  session: Session;
  key: SessionKey;
  /** How long after detaching the session is given up, ms. */
  graceMs: number;
  /** Makes one transport (as the pool's `connect`). */
  connect: (signal: AbortSignal) => Promise<Conn>;
  clock: Clock;
  /** Aborts when the pool closes. */
  signal: AbortSignal;
  onEvent: (e: ResumeEvent) => void;
  /** A new attempt starts this often, ms. Default 500. */
  staggerMs?: number;
  /** An attempt (connect and handshake) gives up after this long, ms. Default 3000. */
  attemptMs?: number;
  /** Attempts at a time. Default 8. */
  maxParallel?: number;
}

/** Tries to resume one detached session until it is back, refused, or out of time. */
export class Resumer {
  /** When the grace period ends, on the clock. */
  readonly deadline: number;
  readonly #o: ResumerOptions;
  readonly #stop = new AbortController();
  readonly #started: number;
  #wake: (() => void) | null = null;
  /** When the next attempt may start, on the clock. */
  #nextStart = -Infinity;
  #finished = false;
  #handshaking = false;
  #attempts = 0;

  /** Starts trying at once. */
  constructor(o: ResumerOptions) {
    this.#o = o;
    this.#started = o.clock.now();
    this.deadline = this.#started + o.graceMs;
    this.#run();
  }

  /** Stops trying (the session closed, or the pool is closing). */
  stop(): void {
    this.#stop.abort();
    this.#wakeUp();
  }

  /** Tries again now (the network changed, the machine woke up). */
  nudge(): void {
    this.#nextStart = -Infinity;
    this.#wakeUp();
  }

  #wakeUp(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async #run(): Promise<void> {
    const o = this.#o;
    const { clock, session } = o;
    const all = AbortSignal.any([o.signal, this.#stop.signal]);
    const stagger = o.staggerMs ?? 500;
    const maxParallel = o.maxParallel ?? 8;
    let round = new AbortController();
    const pending = new Set<Promise<void>>();
    while (!this.#finished && !all.aborted && session.isDetached && !session.isClosed) {
      const left = this.deadline - clock.now();
      if (left <= 0) {
        this.#finished = true;
        const streams = session.numStreams;
        const grace = Math.round(o.graceMs / 1000);
        session.close(new Error(`the tunnel was down longer than the ${grace} s grace period`));
        o.onEvent({ kind: "expired", streams, graceSeconds: grace });
        break;
      }
      const now = clock.now();
      if (pending.size < maxParallel && !this.#handshaking && now >= this.#nextStart) {
        this.#nextStart = now + stagger;
        const p = this.#attempt(round, all, (r) => round = r).finally(() => pending.delete(p));
        pending.add(p);
      }
      await new Promise<void>((resolve) => {
        const timer = clock.setTimer(() => {
          this.#wake = null;
          resolve();
        }, Math.max(1, Math.min(this.#nextStart - now, left)));
        this.#wake = () => {
          clock.clearTimer(timer);
          resolve();
        };
      });
    }
    round.abort();
  }

  /**
   * One attempt: a transport, then (if no other attempt got there first) the handshake and the
   * session attached to it.
   */
  async #attempt(
    round: AbortController,
    all: AbortSignal,
    newRound: (r: AbortController) => void,
  ): Promise<void> {
    const o = this.#o;
    const { clock, session } = o;
    this.#attempts++;
    const timeout = new AbortController();
    const timer = clock.setTimer(
      () => timeout.abort(new Error("resume attempt timed out")),
      o.attemptMs ?? 3000,
    );
    let conn: Conn | null = null;
    try {
      conn = await o.connect(AbortSignal.any([all, round.signal, timeout.signal]));
      if (this.#finished || this.#handshaking || !session.isDetached) {
        conn.close();
        return;
      }
      // This one does the handshake: the other connects of the round are not needed.
      this.#handshaking = true;
      round.abort();
      newRound(new AbortController());
      let peerReceived: number;
      try {
        const r = await abortable(
          helloResume(conn, o.key, session.receivedOffset),
          AbortSignal.any([all, timeout.signal]),
          conn,
        );
        peerReceived = r.peerReceived;
      } finally {
        this.#handshaking = false;
      }
      if (this.#finished || session.isClosed || !session.isDetached) {
        conn.close();
        return;
      }
      this.#finished = true;
      try {
        session.attach(conn, peerReceived);
      } catch (e) {
        conn.close();
        this.#refused(e as Error);
        return;
      }
      o.onEvent({
        kind: "resumed",
        streams: session.numStreams,
        afterMs: clock.now() - this.#started,
        attempts: this.#attempts,
      });
    } catch (e) {
      conn?.close();
      // Busy (another resume of this session is under way on the manager) passes; the rest
      // is final.
      const final = (e instanceof ResumeRefusedError && e.code !== RefuseCode.Busy) ||
        e instanceof LegacyPeerError;
      if (!this.#finished && final) {
        this.#finished = true;
        this.#refused(e);
      }
      // Anything else is the path still being down: the next attempt comes.
    } finally {
      clock.clearTimer(timer);
      this.#wakeUp();
    }
  }

  #refused(e: Error): void {
    const { session, onEvent } = this.#o;
    const streams = session.numStreams;
    const reason = e instanceof ResumeRefusedError ? e.reason : e.message;
    session.close(new Error(`resume refused: ${reason}`));
    onEvent({ kind: "refused", streams, reason });
  }
}

/** `p`, or the signal's reason once it aborts (closing `conn`, which ends `p`). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal, conn: Conn): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      try {
        conn.close();
      } catch {
        // already closed
      }
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
