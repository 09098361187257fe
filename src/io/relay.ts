/**
 * Copies bytes both ways between two connections, with one bounded buffer per direction, so a
 * slow reader on either side holds back the other side's writer instead of growing memory.
 *
 * Buffers start at {@linkcode MIN_RELAY_BUFFER} and double, up to `maxBuffer`, only while reads
 * fill them: an idle or interactive connection holds 2 × 4 KiB, a bulk one up to 2 × `maxBuffer`.
 * With fixed 64 KiB buffers 10,000 idle connections cost 1.3 GB. A connection that hands out
 * buffers of its own (`Conn.readChunk`: a tunnel stream, a port-forward WebSocket) is read
 * without any buffer here and without a copy. A {@linkcode RelayBudget} can refuse growth (the
 * traffic manager accounts relay buffers against each session's memory budget).
 *
 * @module
 */
import type { Conn } from "./conn.ts";

/** Buffer per direction to start with, bytes. */
export const MIN_RELAY_BUFFER = 4 * 1024;
/** Largest buffer per direction by default, bytes. */
export const MAX_RELAY_BUFFER = 64 * 1024;

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

async function pump(
  from: Conn,
  to: Conn,
  o: { max: number; budget: RelayBudget; held: { n: number } },
  count: (n: number) => void,
): Promise<void> {
  if (from.readChunk) {
    for (let c; (c = await from.readChunk(o.max)) !== null;) {
      await writeAll(to, c);
      count(c.length);
    }
  } else {
    let buf = new Uint8Array(Math.min(MIN_RELAY_BUFFER, o.max));
    for (let n; (n = await from.read(buf)) !== null;) {
      await writeAll(to, buf.subarray(0, n));
      count(n);
      // A full read means more is waiting: a bigger buffer moves it in fewer rounds.
      if (n === buf.length && buf.length < o.max && o.budget.grow(buf.length)) {
        o.held.n += buf.length;
        buf = new Uint8Array(buf.length * 2);
      }
    }
  }
  await to.closeWrite();
}

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
export async function relay(a: Conn, b: Conn, options: RelayOptions = {}): Promise<RelayResult> {
  const o = {
    max: options.maxBuffer ?? MAX_RELAY_BUFFER,
    budget: options.budget ?? UNLIMITED,
    held: { n: 0 },
  };
  const result: RelayResult = { aToB: 0, bToA: 0 };
  let closed = false;
  const closeBoth = () => {
    if (closed) return;
    closed = true;
    for (const c of [a, b]) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
  };
  const onAbort = () => closeBoth();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) closeBoth();
  const guard = (p: Promise<void>) =>
    p.catch((e) => {
      if (!closed) {
        result.error = e;
        try {
          options.onError?.(e);
        } catch {
          // the owner's callback must not keep the sides open
        }
      }
      closeBoth();
    });
  try {
    await Promise.all([
      guard(pump(a, b, o, (n) => result.aToB += n)),
      guard(pump(b, a, o, (n) => result.bToA += n)),
    ]);
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    closeBoth();
    o.budget.release(o.held.n);
  }
  return result;
}
