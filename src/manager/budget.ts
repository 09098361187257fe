/**
 * The traffic manager's budgets: how much one client, and all clients together, may make it
 * hold, so that nobody who can port-forward to it can run it out of memory (its pod's limit is
 * 320 MiB) and cut every other user off.
 *
 * What is limited, per session (one port-forward connection; a laptop keeps two by default) and
 * across all sessions:
 *
 * - **sessions**: past the cap a new connection gets a session that refuses every stream with
 *   the reason, and ends after {@linkcode REFUSED_SESSION_MS}; at most
 *   {@linkcode MAX_REFUSING_SESSIONS} of those at once, further connections are closed at once;
 * - **streams**: past the cap a new stream is answered with an error reply naming the cap (the
 *   session's yamux table stops at the cap plus {@linkcode STREAM_HEADROOM}: SYNs past that get
 *   RST); DNS queries are answered SERVFAIL, a control stream gets an `error` message;
 * - **buffered bytes**, received from a client and not yet passed on, and what relay buffers
 *   grew by: bytes that would take a session past its cap reset the stream they came on. Past
 *   the global cap only a session holding more than its share ({@linkcode BudgetLedger.reserveBytes}) has
 *   streams reset, so one client cannot get another's flows reset; the most ever held is the
 *   global cap and one share per session, 1.5 times the cap. Receive windows grow past the
 *   yamux 256 KiB, and relay buffers past 512 B, only while the growth fits these caps;
 * - **pending dials**: TCP connects in progress; more wait their turn (and time out in the
 *   queue like a connect would), so a burst of connections is slowed, not refused;
 * - **UDP flows**: each holds a socket and up to 32 KiB of replies its client has not taken;
 *   past the cap a new flow is refused;
 * - **before the open reply** a stream may hold only its open request (and a DNS query):
 *   {@linkcode OPEN_RECEIVE_LIMIT} until the request is read, then nothing more (a DNS query's
 *   frame) until the reply is sent. Data a client pushes on a stream whose dial hangs resets it.
 *
 * Existing flows are never cut to admit new ones.
 *
 * The defaults fit the pod's 320 MiB with everything at its cap at once, from what the manager
 * was measured to use (Deno 2.9, the pod's V8 flags): about 55 MiB to start; with every session,
 * buffer and UDP cap reached by a hostile client (`bench/manager_budget.ts`, attack 4: 36
 * sessions, 40 MiB buffered, 128 UDP flows flooded with replies) 190 MiB at its peak; and about
 * 9 KiB per open, idle TCP connection (the stream, the socket, a 512 B relay buffer; 10,000
 * held through one laptop took the manager from 75 to 160 MB, `bench/vs_portforward.ts --scale`),
 * 11 KiB with what a burst leaves to collect. So 10,240 streams on top of everything else come to
 * about 300 MiB. One session may hold 5120 streams, so a laptop with its two transports can keep
 * 10,000 concurrent connections and their DNS, and open them all at once. For more users, give
 * the pod more memory and raise the caps with it (`kconnect traffic-manager --max-…`).
 *
 * @module
 */
import type { Command } from "commander";
import { SPEC_INITIAL_WINDOW } from "../tunnel/frame.ts";
import { MAX_OPEN_BODY, OPEN_HEADER_LENGTH } from "../tunnel/open_request.ts";
import type { SessionPolicy } from "../tunnel/session.ts";
import type { Stream } from "../tunnel/stream.ts";
import type { RelayBudget } from "../io/relay.ts";

const MiB = 1024 * 1024;

/** The caps; see the module doc. */
export interface Budgets {
  /** Sessions (port-forward connections) open at once. */
  sessions: number;
  /** Streams open at once, all sessions together. */
  streams: number;
  /** Streams open at once in one session. */
  sessionStreams: number;
  /** Bytes received and not yet passed on, all sessions together. */
  bufferedBytes: number;
  /** Bytes received and not yet passed on, in one session. */
  sessionBufferedBytes: number;
  /** TCP connects in progress, all sessions together (more wait). */
  pendingDials: number;
  /** TCP connects in progress for one session (more wait). */
  sessionPendingDials: number;
  /** UDP flows, all sessions together. */
  udpFlows: number;
  /** UDP flows of one session. */
  sessionUdpFlows: number;
  /**
   * Bytes that sessions waiting to be resumed (their transport lost) may hold, all together:
   * sent and not yet acknowledged, received and not yet passed on. Past it the oldest such
   * session ends.
   */
  detachedBytes: number;
  /** Bytes a session keeps sent and unacknowledged at most (more waits for the client's Ack). */
  sessionRetainBytes: number;
  /** Longest grace period a client gets for its detached sessions, seconds. */
  resumeGraceSeconds: number;
}

/** The defaults (see the module doc for why they are what they are). */
export const DEFAULT_BUDGETS: Readonly<Budgets> = {
  sessions: 32,
  streams: 10240,
  sessionStreams: 5120,
  bufferedBytes: 32 * MiB,
  sessionBufferedBytes: 16 * MiB,
  pendingDials: 512,
  sessionPendingDials: 128,
  udpFlows: 1024,
  sessionUdpFlows: 256,
  detachedBytes: 64 * MiB,
  sessionRetainBytes: 16 * MiB,
  resumeGraceSeconds: 900,
};

/** Yamux streams a session may hold beyond its stream budget before SYNs get a bare RST. */
export const STREAM_HEADROOM = 64;
/** Control streams one session may have (a client keeps one). */
export const MAX_CONTROL_STREAMS = 4;
/** Largest message the manager reads from a client on a control stream. */
export const MAX_CONTROL_MESSAGE = 4096;
/** Longest connect timeout a client may ask for, ms. */
export const MAX_DIAL_TIMEOUT_MS = 120_000;
/**
 * Largest DNS query frame taken: u16 length and the message. Clients send queries they build
 * themselves, one question and an OPT record (a few hundred bytes at most).
 */
export const MAX_DNS_FRAME = 2 + 4096;
/**
 * Bytes a stream may hold before its open request is read: the longest request and a DNS query
 * sent with it (the client sends the query in the same frame as the request). Data beyond it
 * is dropped uncopied and resets the stream.
 */
export const OPEN_RECEIVE_LIMIT = OPEN_HEADER_LENGTH + MAX_OPEN_BODY + MAX_DNS_FRAME;
/**
 * How long the manager waits for a stream's open request, ms; then the stream is reset. A client
 * sends the request with the stream's SYN, so only a stream parked on purpose waits this long.
 */
export const OPEN_REQUEST_TIMEOUT_MS = 10_000;
/** How long a session over the session cap is kept to refuse its streams, ms. */
export const REFUSED_SESSION_MS = 10_000;
/** Sessions over the cap kept at once to say why; further connections are closed at once. */
export const MAX_REFUSING_SESSIONS = 4;

/** A budget's command-line flag. */
export interface BudgetFlag {
  key: keyof Budgets;
  /** Without the leading `--`. */
  flag: string;
  /** `MiB` when the flag is given in MiB (the budget is in bytes). */
  unit: "count" | "MiB";
  description: string;
}

/** Every budget's flag of `traffic-manager`. */
export const BUDGET_FLAGS: readonly BudgetFlag[] = [
  {
    key: "sessions",
    flag: "max-sessions",
    unit: "count",
    description: "sessions (port-forward connections) at once",
  },
  { key: "streams", flag: "max-streams", unit: "count", description: "streams at once" },
  {
    key: "sessionStreams",
    flag: "max-session-streams",
    unit: "count",
    description: "streams at once per session",
  },
  {
    key: "bufferedBytes",
    flag: "max-buffer-mib",
    unit: "MiB",
    description: "MiB received from clients and not yet passed on",
  },
  {
    key: "sessionBufferedBytes",
    flag: "max-session-buffer-mib",
    unit: "MiB",
    description: "MiB received and not yet passed on, per session",
  },
  {
    key: "pendingDials",
    flag: "max-pending-dials",
    unit: "count",
    description: "TCP connects in progress (more wait)",
  },
  {
    key: "sessionPendingDials",
    flag: "max-session-pending-dials",
    unit: "count",
    description: "TCP connects in progress per session (more wait)",
  },
  { key: "udpFlows", flag: "max-udp-flows", unit: "count", description: "UDP flows" },
  {
    key: "sessionUdpFlows",
    flag: "max-session-udp-flows",
    unit: "count",
    description: "UDP flows per session",
  },
  {
    key: "detachedBytes",
    flag: "max-detached-mib",
    unit: "MiB",
    description:
      "MiB that sessions waiting to resume may hold, all together (past it the oldest ends)",
  },
  {
    key: "sessionRetainBytes",
    flag: "max-session-retain-mib",
    unit: "MiB",
    description: "MiB a session keeps sent and not yet acknowledged, to send again after a resume",
  },
  {
    key: "resumeGraceSeconds",
    flag: "max-resume-grace",
    unit: "count",
    description: "longest grace period, in seconds, that a detached session's flows are held",
  },
];

function flagOf(key: keyof Budgets): string {
  return `--${BUDGET_FLAGS.find((f) => f.key === key)!.flag}`;
}

/**
 * The defaults with `partial` over them; throws RangeError naming the flag when a value is not a
 * positive integer or a session's cap exceeds the global one.
 */
export function resolveBudgets(partial: Partial<Budgets> = {}): Budgets {
  const b: Budgets = { ...DEFAULT_BUDGETS };
  for (const [k, v] of Object.entries(partial)) {
    if (v !== undefined) b[k as keyof Budgets] = v;
  }
  for (const f of BUDGET_FLAGS) {
    const v = b[f.key];
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(`${flagOf(f.key)} must be a positive integer, got ${v}`);
    }
  }
  const pairs: [keyof Budgets, keyof Budgets][] = [
    ["sessionStreams", "streams"],
    ["sessionBufferedBytes", "bufferedBytes"],
    ["sessionPendingDials", "pendingDials"],
    ["sessionUdpFlows", "udpFlows"],
  ];
  for (const [s, g] of pairs) {
    if (b[s] > b[g]) {
      throw new RangeError(`${flagOf(s)} (${b[s]}) may not exceed ${flagOf(g)} (${b[g]})`);
    }
  }
  return b;
}

/** Adds every budget's flag to `command` (`traffic-manager`). */
export function addBudgetOptions(command: Command): Command {
  for (const f of BUDGET_FLAGS) {
    const d = DEFAULT_BUDGETS[f.key];
    command.option(
      `--${f.flag} <${f.unit === "MiB" ? "mib" : "n"}>`,
      `${f.description} (default ${f.unit === "MiB" ? d / MiB : d})`,
    );
  }
  return command;
}

/** The budgets given as flags (`opts()` of a command {@linkcode addBudgetOptions} set up). */
export function budgetsFromOptions(opts: Record<string, unknown>): Budgets {
  const partial: Partial<Budgets> = {};
  for (const f of BUDGET_FLAGS) {
    const name = f.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const raw = opts[name];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!/^\d+$/.test(String(raw)) || !Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(`--${f.flag} must be a positive integer, got "${raw}"`);
    }
    partial[f.key] = f.unit === "MiB" ? n * MiB : n;
  }
  return resolveBudgets(partial);
}

/** Counters of a {@linkcode BudgetLedger} or {@linkcode SessionBudget}; live objects. */
export interface BudgetStats {
  /** Streams admitted and not yet finished. */
  streams: number;
  /**
   * Streams held from their SYN until they finish, admitted or still without an open request
   * (see {@linkcode SessionBudget.holdStream}).
   */
  heldStreams: number;
  /** Bytes received and not yet passed on. */
  bufferedBytes: number;
  /** What auto-tuning added to receive windows beyond the yamux 256 KiB. */
  windowGrowth: number;
  /** What relays' buffers grew by beyond their first 512 B each way (see `relay.ts`). */
  relayBytes: number;
  /** TCP connects in progress. */
  pendingDials: number;
  /** TCP dials waiting for a turn. */
  queuedDials: number;
  /** UDP flows. */
  udpFlows: number;
  /** Control streams. */
  controlStreams: number;
  /** What was refused, by cap. */
  refused: {
    sessions: number;
    streams: number;
    bufferedBytes: number;
    udpFlows: number;
    controlStreams: number;
  };
}

function newStats(): BudgetStats {
  return {
    streams: 0,
    heldStreams: 0,
    bufferedBytes: 0,
    windowGrowth: 0,
    relayBytes: 0,
    pendingDials: 0,
    queuedDials: 0,
    udpFlows: 0,
    controlStreams: 0,
    refused: { sessions: 0, streams: 0, bufferedBytes: 0, udpFlows: 0, controlStreams: 0 },
  };
}

/** What a stream was admitted as. */
export type StreamKind = "tcp" | "udp" | "dns" | "control";

function busy(what: string, limit: number, flag: string): string {
  return `traffic manager busy: ${what} (limit ${limit}, ${flag})`;
}

interface DialWaiter {
  session: SessionBudget;
  grant: () => void;
}

/** The manager-wide budget: counts across sessions, and hands out {@linkcode SessionBudget}s. */
export class BudgetLedger {
  /** The caps. */
  readonly budgets: Budgets;
  /** Totals across sessions; a live object. */
  readonly stats: BudgetStats = newStats();
  /** Sessions admitted and open. */
  #sessions = new Set<SessionBudget>();
  #dialQueue: DialWaiter[] = [];

  constructor(budgets: Partial<Budgets> = {}) {
    this.budgets = resolveBudgets(budgets);
  }

  /** Sessions admitted and open. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /**
   * Buffered bytes a session may always hold, whatever the others hold: half its fair share of
   * the global cap, so that all of them together add at most half the cap to it.
   */
  get reserveBytes(): number {
    return Math.floor(this.budgets.bufferedBytes / (2 * this.budgets.sessions));
  }

  /**
   * A budget for a new session, or the reason it is refused (past the session cap). Call
   * {@linkcode SessionBudget.close} when the session has ended.
   */
  openSession(): SessionBudget | string {
    if (this.#sessions.size >= this.budgets.sessions) {
      this.stats.refused.sessions++;
      return busy(
        `${this.#sessions.size} sessions are open`,
        this.budgets.sessions,
        flagOf("sessions"),
      );
    }
    const s = new SessionBudget(this);
    this.#sessions.add(s);
    return s;
  }

  /** @internal */
  _closed(s: SessionBudget): void {
    this.#sessions.delete(s);
    this.#dialQueue = this.#dialQueue.filter((w) => w.session !== s);
  }

  /** @internal Grants waiting dials their turn while there is room. */
  _drainDials(): void {
    const b = this.budgets;
    for (let i = 0; i < this.#dialQueue.length;) {
      if (this.stats.pendingDials >= b.pendingDials) return;
      const w = this.#dialQueue[i];
      if (w.session.stats.pendingDials >= b.sessionPendingDials) {
        i++;
        continue;
      }
      this.#dialQueue.splice(i, 1);
      w.grant();
    }
  }

  /** @internal */
  _enqueueDial(w: DialWaiter): () => void {
    this.#dialQueue.push(w);
    return () => {
      const i = this.#dialQueue.indexOf(w);
      if (i >= 0) this.#dialQueue.splice(i, 1);
    };
  }
}

/**
 * One session's budget. It is the session's {@linkcode SessionPolicy} (caps on what its streams
 * buffer), and the stream handlers ask it before serving a stream, dialling or opening a UDP
 * flow.
 */
export class SessionBudget implements SessionPolicy {
  /** This session's counters; a live object. */
  readonly stats: BudgetStats = newStats();
  readonly inboundReceiveLimit: number = OPEN_RECEIVE_LIMIT;
  readonly #ledger: BudgetLedger;
  /**
   * Every held stream, with what it was admitted as (null until its open request is read; no
   * object per stream: a stream may idle for hours).
   */
  readonly #admitted = new Map<Stream, StreamKind | null>();
  /** The controllers behind {@linkcode streamGone}'s signals, while they are wanted. */
  readonly #gone = new Map<Stream, AbortController>();
  /** Shared by all the session's relays (they account the session, not themselves). */
  #relayBudget: RelayBudget | undefined;
  #closed = false;

  constructor(ledger: BudgetLedger) {
    this.#ledger = ledger;
  }

  // --- SessionPolicy ---

  admitReceive(_stream: Stream, n: number): string | null {
    const b = this.#ledger.budgets;
    const g = this.#ledger.stats;
    const mine = this.stats.bufferedBytes + n;
    if (mine > b.sessionBufferedBytes) {
      this.stats.refused.bufferedBytes++;
      g.refused.bufferedBytes++;
      return busy(
        `this session holds ${this.stats.bufferedBytes} bytes not yet passed on`,
        b.sessionBufferedBytes,
        flagOf("sessionBufferedBytes"),
      );
    }
    if (g.bufferedBytes + n > b.bufferedBytes && mine > this.#ledger.reserveBytes) {
      this.stats.refused.bufferedBytes++;
      g.refused.bufferedBytes++;
      return busy(
        `all sessions hold ${g.bufferedBytes} bytes not yet passed on`,
        b.bufferedBytes,
        flagOf("bufferedBytes"),
      );
    }
    return null;
  }

  onBuffered(n: number): void {
    this.stats.bufferedBytes += n;
    this.#ledger.stats.bufferedBytes += n;
  }

  admitWindowGrowth(_stream: Stream, n: number): boolean {
    const b = this.#ledger.budgets;
    if (this.stats.windowGrowth + n > b.sessionBufferedBytes - SPEC_INITIAL_WINDOW) return false;
    if (this.#ledger.stats.windowGrowth + n > b.bufferedBytes - SPEC_INITIAL_WINDOW) return false;
    this.stats.windowGrowth += n;
    this.#ledger.stats.windowGrowth += n;
    return true;
  }

  onRelease(stream: Stream): void {
    const grown = stream.windowGrowth;
    if (grown > 0) {
      this.stats.windowGrowth -= grown;
      this.#ledger.stats.windowGrowth -= grown;
    }
    const kind = this.#admitted.get(stream);
    if (kind === undefined) return;
    this.#admitted.delete(stream);
    this.#unhold();
    if (kind === null) return;
    this.#count(kind, -1);
    const gone = this.#gone.get(stream);
    if (gone === undefined) return;
    this.#gone.delete(stream);
    gone.abort(new Error("stream finished"));
  }

  /**
   * Where a TCP relay of this session accounts its buffers' growth: they grow only while the
   * session's buffered bytes and relay buffers together fit its budget, and the manager's fit
   * the global one (or the session holds no more than its fair share). The same object for
   * every relay of the session.
   */
  relayBudget(): RelayBudget {
    return this.#relayBudget ??= {
      grow: (n) => {
        const b = this.#ledger.budgets;
        const g = this.#ledger.stats;
        const mine = this.stats.bufferedBytes + this.stats.relayBytes + n;
        if (mine > b.sessionBufferedBytes) return false;
        if (
          g.bufferedBytes + g.relayBytes + n > b.bufferedBytes && mine > this.#ledger.reserveBytes
        ) return false;
        this.stats.relayBytes += n;
        g.relayBytes += n;
        return true;
      },
      release: (n) => {
        this.stats.relayBytes -= n;
        this.#ledger.stats.relayBytes -= n;
      },
    };
  }

  // --- streams ---

  /**
   * Holds a stream the session just accepted, before its open request is read: false (reset
   * it) when the streams held by all sessions, admitted or not, reach the global cap and
   * {@linkcode STREAM_HEADROOM}. Each session's own table stops at its cap and the headroom;
   * this keeps streams that never send their request from piling up across sessions (32
   * sessions × 5184 such streams took the manager past 600 MiB). A held stream counts until it
   * leaves the session.
   */
  holdStream(stream: Stream): boolean {
    if (stream.released || this.#closed) return false;
    const g = this.#ledger.stats;
    if (g.heldStreams >= this.#ledger.budgets.streams + STREAM_HEADROOM) {
      this.stats.refused.streams++;
      g.refused.streams++;
      return false;
    }
    this.#admitted.set(stream, null);
    this.stats.heldStreams++;
    g.heldStreams++;
    return true;
  }

  #unhold(): void {
    this.stats.heldStreams--;
    this.#ledger.stats.heldStreams--;
  }

  /**
   * Admits `stream` as a `kind` stream: null, or why not (a cap it would pass). An admitted
   * stream counts until it leaves the session.
   */
  admitStream(stream: Stream, kind: StreamKind): string | null {
    if (stream.released || this.#closed) return "the stream has already finished";
    const b = this.#ledger.budgets;
    const g = this.#ledger.stats;
    let why: string | null = null;
    if (this.stats.streams >= b.sessionStreams) {
      why = busy(
        `this session has ${this.stats.streams} streams open`,
        b.sessionStreams,
        flagOf("sessionStreams"),
      );
    } else if (g.streams >= b.streams) {
      why = busy(`${g.streams} streams are open`, b.streams, flagOf("streams"));
    }
    if (why !== null) {
      this.stats.refused.streams++;
      g.refused.streams++;
      return why;
    }
    if (kind === "control" && this.stats.controlStreams >= MAX_CONTROL_STREAMS) {
      this.stats.refused.controlStreams++;
      g.refused.controlStreams++;
      return `traffic manager busy: this session has ${this.stats.controlStreams} control streams (limit ${MAX_CONTROL_STREAMS})`;
    }
    if (!this.#admitted.has(stream)) {
      this.stats.heldStreams++;
      g.heldStreams++;
    }
    this.#admitted.set(stream, kind);
    this.#count(kind, 1);
    return null;
  }

  #count(kind: StreamKind, d: number): void {
    for (const s of [this.stats, this.#ledger.stats]) {
      s.streams += d;
      if (kind === "control") s.controlStreams += d;
    }
  }

  /**
   * A signal that aborts once the admitted `stream` has left the session (or at once). Call
   * {@linkcode forgetStreamGone} when it is no longer needed.
   */
  streamGone(stream: Stream): AbortSignal {
    if (!this.#admitted.has(stream)) return AbortSignal.abort(new Error("stream finished"));
    let gone = this.#gone.get(stream);
    if (gone === undefined) {
      gone = new AbortController();
      this.#gone.set(stream, gone);
    }
    return gone.signal;
  }

  /**
   * Lets go of the signal {@linkcode streamGone} gave for `stream` (it will not abort later):
   * what it was for is over, e.g. the dial, and the stream may stay open for hours.
   */
  forgetStreamGone(stream: Stream): void {
    this.#gone.delete(stream);
  }

  /**
   * Waits for a turn to dial: resolves with the function that gives it back (call it once the
   * connect has finished, either way). Rejects with `signal`'s reason if it aborts first, and
   * with a TimeoutError after `timeoutMs`.
   */
  acquireDial(signal: AbortSignal, timeoutMs: number): Promise<() => void> {
    const b = this.#ledger.budgets;
    const g = this.#ledger.stats;
    if (signal.aborted) return Promise.reject(signal.reason);
    if (
      this.stats.pendingDials < b.sessionPendingDials && g.pendingDials < b.pendingDials &&
      this.stats.queuedDials === 0
    ) {
      return Promise.resolve(this.#takeDial());
    }
    return new Promise((resolve, reject) => {
      this.stats.queuedDials++;
      g.queuedDials++;
      const unqueue = () => {
        this.stats.queuedDials--;
        g.queuedDials--;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const fail = (reason: unknown) => {
        remove();
        unqueue();
        reject(reason);
      };
      const onAbort = () => fail(signal.reason);
      const timer = setTimeout(
        () => fail(new DOMException(`no turn to dial within ${timeoutMs} ms`, "TimeoutError")),
        timeoutMs,
      );
      const remove = this.#ledger._enqueueDial({
        session: this,
        grant: () => {
          unqueue();
          resolve(this.#takeDial());
        },
      });
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Takes a turn to dial: the function that gives it back (once, however often called). */
  #takeDial(): () => void {
    const g = this.#ledger.stats;
    this.stats.pendingDials++;
    g.pendingDials++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.stats.pendingDials--;
      g.pendingDials--;
      this.#ledger._drainDials();
    };
  }

  /** Takes a UDP flow: the function that gives it back, or why not. */
  openUdpFlow(): (() => void) | string {
    const b = this.#ledger.budgets;
    const g = this.#ledger.stats;
    let why: string | null = null;
    if (this.stats.udpFlows >= b.sessionUdpFlows) {
      why = busy(
        `this session has ${this.stats.udpFlows} UDP flows`,
        b.sessionUdpFlows,
        flagOf("sessionUdpFlows"),
      );
    } else if (g.udpFlows >= b.udpFlows) {
      why = busy(`${g.udpFlows} UDP flows are open`, b.udpFlows, flagOf("udpFlows"));
    }
    if (why !== null) {
      this.stats.refused.udpFlows++;
      g.refused.udpFlows++;
      return why;
    }
    this.stats.udpFlows++;
    g.udpFlows++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.stats.udpFlows--;
      g.udpFlows--;
    };
  }

  /**
   * The session has ended: its admitted streams stop counting (each stream's release normally
   * did that already) and it leaves the ledger.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const kind of this.#admitted.values()) {
      this.#unhold();
      if (kind !== null) this.#count(kind, -1);
    }
    this.#admitted.clear();
    const gone = [...this.#gone.values()];
    this.#gone.clear();
    for (const c of gone) c.abort(new Error("session closed"));
    this.#ledger._closed(this);
  }
}
