/**
 * Copies bytes both ways between two connections, with one bounded buffer per direction, so a
 * slow reader on either side holds back the other side's writer instead of growing memory.
 *
 * Buffers start at {@linkcode MIN_RELAY_BUFFER} (512 bytes) and double, up to `maxBuffer`, only
 * while reads fill them: an idle or interactive connection holds 512 bytes per direction read
 * from a socket, a bulk one up to `maxBuffer` (512 bytes to 64 KiB takes 7 full reads). A grown
 * buffer goes back to 512 bytes when a read that does not fill it comes a second or more after
 * one that had drained the socket (did not fill it either): the bulk transfer is over, and a
 * keep-alive connection that once downloaded does not hold 64 KiB for the rest of its life.
 * Reads that fill the buffer never look at the clock. A connection that hands out buffers of its
 * own (`Conn.readChunk`: a tunnel stream, a port-forward WebSocket) is read without any buffer
 * here and without a copy. A {@linkcode RelayBudget} can refuse growth (the traffic manager
 * accounts relay buffers against each session's memory budget).
 *
 * While idle a relay holds one object, the promise it resolves, one suspended async call per
 * direction and the socket-side buffer: no closures, no `Promise.all`. Measured in-process (8,000
 * relays, each between an accepted loopback TCP connection and a connection read with
 * `readChunk`, as the client's flows and the manager's streams are; V8 heap plus external after a
 * forced GC): 8.6 KB per relay with 4 KiB buffers and closures, 3.4 KB now, of which Deno's own
 * pending socket read is about 1.2 KB. Fixed 64 KiB buffers cost 10,000 idle connections 1.3 GB.
 *
 * @module
 */
import type { Conn } from "./conn.ts";
import { type Clock, systemClock } from "./clock.ts";

/** Buffer per direction to start with, bytes. */
export const MIN_RELAY_BUFFER = 512;
/** Largest buffer per direction by default, bytes. */
export const MAX_RELAY_BUFFER = 64 * 1024;
/**
 * A read that does not fill a grown buffer and comes this long (ms) after one that drained the
 * socket gives the growth back.
 */
const QUIET_MS = 1000;

/** Where a relay's buffer growth is accounted. */
export interface RelayBudget {
  /** Whether a buffer may grow by `n` bytes (then counted until {@linkcode release}). */
  grow(n: number): boolean;
  /** `n` bytes of buffer are given back. */
  release(n: number): void;
}

/** Options for {@linkcode relay}. */
export interface RelayOptions {
  /** Largest buffer per direction, bytes. Default {@linkcode MAX_RELAY_BUFFER}. */
  maxBuffer?: number;
  /** Accounts buffer growth; default: growth is always allowed. */
  budget?: RelayBudget;
  /** Closes both sides at once when aborted. */
  signal?: AbortSignal;
  /**
   * Called with what failed, before both sides are closed (the owner may act first: the flow
   * engine resets the program's connection before closing the socket could end it in order).
   */
  onError?: (error: unknown) => void;
  /** Times the quiet spells after which a grown buffer shrinks. Default the system clock. */
  clock?: Clock;
}

/** Bytes moved by {@linkcode relay}. */
export interface RelayResult {
  /** Bytes from `a` to `b`. */
  aToB: number;
  /** Bytes from `b` to `a`. */
  bToA: number;
  /** What failed and closed both sides, if a direction failed (not set when both ended). */
  error?: unknown;
}

const UNLIMITED: RelayBudget = { grow: () => true, release: () => {} };

/** Writes all of `p` to `to` (looping over partial writes). */
export async function writeAll(to: Conn, p: Uint8Array): Promise<void> {
  let off = 0;
  while (off < p.length) off += await to.write(off === 0 ? p : p.subarray(off));
}

/**
 * Relays between `a` and `b` until both directions have ended: end of stream on one side is
 * passed on as a half-close to the other, so a program that shuts its write side still reads
 * the full reply. An error in either direction closes both sides. Never rejects; closes both
 * connections, and gives the budget back what it granted, before resolving.
 */
export function relay(a: Conn, b: Conn, options: RelayOptions = {}): Promise<RelayResult> {
  return new Promise((resolve) => new Relay(a, b, options, resolve).start());
}

/**
 * One relay's state, shared by its two directions (each a suspended async call while idle): a
 * counter sees both end, and the object is its own abort listener ({@linkcode Relay.handleEvent}),
 * so no closure stays alive per connection.
 */
class Relay {
  readonly #a: Conn;
  readonly #b: Conn;
  readonly #options: RelayOptions;
  readonly #resolve: (result: RelayResult) => void;
  readonly #max: number;
  readonly #budget: RelayBudget;
  readonly #clock: Clock;
  #aToB = 0;
  #bToA = 0;
  /** Growth the budget granted, both directions, not given back yet. */
  #held = 0;
  /** Directions still running. */
  #running = 2;
  #closed = false;
  #failed = false;
  #error: unknown = undefined;

  constructor(
    a: Conn,
    b: Conn,
    options: RelayOptions,
    resolve: (result: RelayResult) => void,
  ) {
    this.#a = a;
    this.#b = b;
    this.#options = options;
    this.#resolve = resolve;
    this.#max = options.maxBuffer ?? MAX_RELAY_BUFFER;
    this.#budget = options.budget ?? UNLIMITED;
    this.#clock = options.clock ?? systemClock;
  }

  start(): void {
    const signal = this.#options.signal;
    if (signal) {
      signal.addEventListener("abort", this, { once: true });
      if (signal.aborted) this.#close();
    }
    this.#pump(this.#a, this.#b, true);
    this.#pump(this.#b, this.#a, false);
  }

  /** The abort listener: closes both sides. */
  handleEvent(): void {
    this.#close();
  }

  /** Runs one direction; it ends (never rejects) through {@linkcode Relay.#ended}. */
  #pump(from: Conn, to: Conn, aToB: boolean): void {
    if (from.readChunk) this.#pumpChunks(from, to, aToB);
    else this.#pumpBuffer(from, to, aToB);
  }

  async #pumpChunks(from: Conn, to: Conn, aToB: boolean): Promise<void> {
    try {
      for (let c; (c = await from.readChunk!(this.#max)) !== null;) {
        await writeAll(to, c);
        this.#count(aToB, c.length);
      }
      await to.closeWrite();
    } catch (e) {
      return this.#ended(true, e);
    }
    this.#ended(false, undefined);
  }

  async #pumpBuffer(from: Conn, to: Conn, aToB: boolean): Promise<void> {
    try {
      const min = Math.min(MIN_RELAY_BUFFER, this.#max);
      let buf = new Uint8Array(min);
      // When a read last returned less than a grown buffer (it had drained the socket); unset
      // after a full one.
      let drained: number | undefined;
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        const data = buf.subarray(0, n);
        if (n === buf.length) {
          // A full read means more is waiting: a bigger buffer moves it in fewer rounds.
          drained = undefined;
          const more = Math.min(buf.length, this.#max - buf.length);
          if (more > 0 && this.#budget.grow(more)) {
            this.#held += more;
            buf = new Uint8Array(buf.length + more);
          }
        } else if (buf.length > min) {
          // The clock is read only here, never while reads fill the buffer.
          const now = this.#clock.now();
          if (drained !== undefined && now - drained >= QUIET_MS) {
            // The socket was drained and stayed quiet: the bulk transfer is over.
            this.#held -= buf.length - min;
            this.#budget.release(buf.length - min);
            buf = new Uint8Array(min);
            drained = undefined;
          } else {
            drained = now;
          }
        }
        await writeAll(to, data);
        this.#count(aToB, n);
      }
      await to.closeWrite();
    } catch (e) {
      return this.#ended(true, e);
    }
    this.#ended(false, undefined);
  }

  #count(aToB: boolean, n: number): void {
    if (aToB) this.#aToB += n;
    else this.#bToA += n;
  }

  /** One direction ended (`failed`: with `error`); the second one resolves the relay. */
  #ended(failed: boolean, error: unknown): void {
    if (failed) {
      if (!this.#closed) {
        this.#failed = true;
        this.#error = error;
        try {
          this.#options.onError?.(error);
        } catch {
          // the owner's callback must not keep the sides open
        }
      }
      this.#close();
    }
    if (--this.#running > 0) return;
    this.#options.signal?.removeEventListener("abort", this);
    this.#close();
    this.#budget.release(this.#held);
    const result: RelayResult = { aToB: this.#aToB, bToA: this.#bToA };
    if (this.#failed) result.error = this.#error;
    this.#resolve(result);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#a.close();
    } catch { /* already closed */ }
    try {
      this.#b.close();
    } catch { /* already closed */ }
  }
}
