/**
 * The accepting side of resumable sessions (the traffic manager): the handshake on each new
 * transport (`hello.ts`), the table of resumable sessions by id, and what a detached session may
 * hold and for how long.
 *
 * A session whose transport is lost stays, detached, for its grace period (what the client asked
 * for, at most `maxGraceSeconds`); a valid resume attaches it to the new transport (taking it
 * over from an old transport that still looks alive: a black hole is not noticed on this side);
 * a wrong proof changes nothing. When the grace period ends, or the detached sessions together
 * hold more than `detachedCapBytes` (the oldest goes first), the session is closed and its
 * streams end, so the pods' connections close instead of waiting for ever.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import { systemClock, type TimerClock as Clock } from "../io/clock.ts";
import { prefixed } from "../io/prefixed.ts";
import {
  challenge,
  checkProof,
  readHello,
  RefuseCode,
  type SessionKey,
  shortId,
  writeRefused,
  writeResumed,
  writeWelcome,
} from "./hello.ts";
import { Session } from "./session.ts";
import { abortable } from "./resumer.ts";

/** What a new session is made with (null: a plain yamux session, protocol 1). */
export interface ResumeGrant {
  graceSeconds: number;
  retainLimit: number;
}

/** Options for a {@linkcode SessionRegistry}. */
export interface SessionRegistryOptions {
  /** Longest grace period granted, seconds. */
  maxGraceSeconds: number;
  /** Unacknowledged bytes a session keeps at most (`SessionOptions.retainLimit`). */
  retainLimit: number;
  /** What all detached sessions together may hold (kept and buffered bytes). */
  detachedCapBytes: number;
  /** How long a handshake may take, ms. Default 10000. */
  handshakeMs?: number;
  clock?: Clock;
  /** Where it says what happened (never a secret). */
  log?: (level: "info" | "warn", message: string) => void;
}

/** What {@linkcode SessionRegistry.handshake} did with a transport. */
export type HandshakeResult =
  /** A new session (resumable or, for a protocol-1 client, plain): serve its streams. */
  | { kind: "new"; session: Session }
  /** The transport now carries a session that was detached: its streams are served already. */
  | { kind: "resumed"; session: Session }
  /** Refused (and the transport closed); `reason` says why. */
  | { kind: "refused"; reason: string };

/** Counts for the manager's log and stats. */
export interface RegistryStats {
  /** Resumable sessions known (attached or detached). */
  sessions: number;
  /** Of them, detached. */
  detached: number;
  /** Bytes the detached sessions hold. */
  detachedBytes: number;
  /** The cap on that. */
  detachedCapBytes: number;
  /** Resumes done, refused (any reason), and sessions given up (grace over or cap). */
  resumed: number;
  refused: number;
  expired: number;
}

interface _Entry {
  key: SessionKey;
  session: Session;
  graceSeconds: number;
  detachedAt: number | null;
  timer: number | undefined;
  resuming: boolean;
}

function hex(id: Uint8Array): string {
  return [...id].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The table of resumable sessions and the handshake that fills it. */
export class SessionRegistry {
  readonly #o: SessionRegistryOptions;
  readonly #clock: Clock;
  readonly #entries = new Map<string, _Entry>();
  #resumed = 0;
  #refused = 0;
  #expired = 0;

  constructor(options: SessionRegistryOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** The counts now. */
  get stats(): RegistryStats {
    let detached = 0;
    let detachedBytes = 0;
    for (const e of this.#entries.values()) {
      if (!e.session.isDetached) continue;
      detached++;
      detachedBytes += held(e.session);
    }
    return {
      sessions: this.#entries.size,
      detached,
      detachedBytes,
      detachedCapBytes: this.#o.detachedCapBytes,
      resumed: this.#resumed,
      refused: this.#refused,
      expired: this.#expired,
    };
  }

  /**
   * Reads the client's first message on `conn` and acts on it. `create` makes a session over a
   * transport: resumable with the grant, or plain (null, a protocol-1 client); with `keep: false`
   * the registry does not keep it for resumption (a session that only refuses its streams).
   * It is called only for a new session, after the grant was sent.
   */
  async handshake(
    conn: Conn,
    create: (
      conn: Conn,
      grant: ResumeGrant | null,
    ) => Session | { session: Session; keep: boolean },
  ): Promise<HandshakeResult> {
    const t = new AbortController();
    const timer = this.#clock.setTimer(
      () => t.abort(new Error("handshake timed out")),
      this.#o.handshakeMs ?? 10_000,
    );
    try {
      const hello = await abortable(readHello(conn), t.signal, conn);
      if (hello.kind === "legacy") {
        const made = create(prefixed(conn, Uint8Array.of(hello.first)), null);
        return { kind: "new", session: made instanceof Session ? made : made.session };
      }
      if (hello.kind === "new") {
        const id = hex(hello.key.id);
        if (this.#entries.has(id)) {
          return await this.#refuse(conn, RefuseCode.Protocol, "session id in use");
        }
        const grant = {
          graceSeconds: Math.min(hello.graceSeconds, this.#o.maxGraceSeconds),
          retainLimit: this.#o.retainLimit,
        };
        await abortable(writeWelcome(conn, grant), t.signal, conn);
        const made = create(conn, grant);
        const session = made instanceof Session ? made : made.session;
        if (made instanceof Session || made.keep) {
          this.#register(id, hello.key, session, grant.graceSeconds);
        }
        return { kind: "new", session };
      }
      return await this.#resume(conn, hello.id, t.signal);
    } catch (e) {
      try {
        conn.close();
      } catch {
        // already closed
      }
      return { kind: "refused", reason: `handshake: ${(e as Error).message}` };
    } finally {
      this.#clock.clearTimer(timer);
    }
  }

  /** Closes every session (the manager is stopping). */
  async close(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((e) => e.session.close()));
  }

  async #resume(conn: Conn, id: Uint8Array, signal: AbortSignal): Promise<HandshakeResult> {
    const e = this.#entries.get(hex(id));
    const name = shortId(id);
    if (e === undefined || e.session.isClosed) {
      return await this.#refuse(
        conn,
        RefuseCode.Unknown,
        "no such session here (the traffic manager restarted or was replaced, or the session ended)",
      );
    }
    if (e.resuming) {
      return await this.#refuse(conn, RefuseCode.Busy, "a resume of this session is under way");
    }
    e.resuming = true;
    try {
      const { nonce, mac, received } = await abortable(challenge(conn), signal, conn);
      if (!checkProof(e.key, nonce, mac)) {
        this.#log("warn", `session ${name}: resume with a wrong proof refused`);
        return await this.#refuse(conn, RefuseCode.BadProof, "the proof does not match");
      }
      const s = e.session;
      if (s.isClosed) return await this.#refuse(conn, RefuseCode.Expired, "the session ended");
      if (!s.isDetached) s.detach(new Error("taken over by a new transport"));
      const problem = s.resumeProblem(received);
      if (problem !== null) {
        await this.#refuse(conn, RefuseCode.Offset, problem);
        await s.close(new Error(`resume: ${problem}`));
        return { kind: "refused", reason: problem };
      }
      await abortable(writeResumed(conn, s.receivedOffset, e.graceSeconds), signal, conn);
      const away = e.detachedAt === null ? 0 : this.#clock.now() - e.detachedAt;
      s.attach(conn, received);
      if (e.timer !== undefined) this.#clock.clearTimer(e.timer);
      e.timer = undefined;
      e.detachedAt = null;
      this.#resumed++;
      this.#log(
        "info",
        `session ${name} resumed after ${(away / 1000).toFixed(1)} s with ${s.numStreams} streams`,
      );
      return { kind: "resumed", session: s };
    } finally {
      e.resuming = false;
    }
  }

  async #refuse(conn: Conn, code: RefuseCode, reason: string): Promise<HandshakeResult> {
    this.#refused++;
    try {
      await writeRefused(conn, code, reason);
    } catch {
      // the client went away
    }
    try {
      conn.close();
    } catch {
      // already closed
    }
    return { kind: "refused", reason };
  }

  #register(id: string, key: SessionKey, session: Session, graceSeconds: number): void {
    const e: _Entry = {
      key,
      session,
      graceSeconds,
      detachedAt: null,
      timer: undefined,
      resuming: false,
    };
    this.#entries.set(id, e);
    const name = shortId(key.id);
    session.onDetached = (info) => {
      const now = this.#clock.now();
      e.detachedAt = now;
      if (e.timer !== undefined) this.#clock.clearTimer(e.timer);
      e.timer = this.#clock.setTimer(() => {
        if (!session.isDetached) return;
        this.#expire(e, `not resumed within its ${graceSeconds} s grace period`);
      }, graceSeconds * 1000);
      this.#log(
        "info",
        `session ${name} detached (${info.reason}${
          info.error ? `: ${info.error.message}` : ""
        }): holding ${session.numStreams} streams, ${held(session)} bytes, for ${graceSeconds} s`,
      );
      this.#enforceCap();
    };
    session.closed.then(() => {
      if (e.timer !== undefined) this.#clock.clearTimer(e.timer);
      if (this.#entries.get(id) === e) this.#entries.delete(id);
    });
  }

  /** Closes the oldest detached sessions while they hold more than the cap. */
  #enforceCap(): void {
    const detached = [...this.#entries.values()]
      .filter((e) => e.session.isDetached && !e.session.isClosed)
      .sort((a, b) => (a.detachedAt ?? 0) - (b.detachedAt ?? 0));
    let total = detached.reduce((n, e) => n + held(e.session), 0);
    for (const e of detached) {
      if (total <= this.#o.detachedCapBytes) break;
      total -= held(e.session);
      this.#expire(
        e,
        `detached sessions hold more than the cap of ${this.#o.detachedCapBytes} bytes`,
      );
    }
  }

  #expire(e: _Entry, why: string): void {
    this.#expired++;
    this.#log(
      "warn",
      `session ${shortId(e.key.id)} ended: ${why}; ${e.session.numStreams} streams closed`,
    );
    e.session.close(new Error(why));
  }

  #log(level: "info" | "warn", message: string): void {
    this.#o.log?.(level, message);
  }
}

/** Bytes a session holds for its peer: kept to send again, buffered and queued. */
function held(s: Session): number {
  return s.retainedBytes + s.heldBytes;
}
