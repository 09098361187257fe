/**
 * The manager's relay between a client's stream and the TCP connection it dialled. Like
 * `src/io/relay.ts` (half-close passed on, an error closes both sides), but with buffers that
 * start small and grow only for flows that fill them, within the session's budget: an idle or
 * slow connection holds 2 × {@linkcode MIN_RELAY_BUFFER}, a bulk one up to 2 ×
 * {@linkcode MAX_RELAY_BUFFER}. With fixed 64 KiB buffers every connection cost 128 KiB, so
 * a few thousand connections (a few heavy users, or one hostile client) filled the pod.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import { writeAll } from "../io/relay.ts";

/** Buffer per direction to start with, bytes. */
export const MIN_RELAY_BUFFER = 4 * 1024;
/** Largest buffer per direction, bytes. */
export const MAX_RELAY_BUFFER = 64 * 1024;

/** Where a relay's buffer growth is accounted. */
export interface RelayBudget {
  /** Whether a buffer may grow by `n` bytes (then counted until {@linkcode release}). */
  grow(n: number): boolean;
  /** `n` bytes of buffer are given back. */
  release(n: number): void;
}

async function pump(from: Conn, to: Conn, budget: RelayBudget, held: { n: number }) {
  if (from.readChunk) {
    // The stream's own buffers (already within the session's receive budget) go out as they
    // are: no buffer here, no copy.
    for (let c; (c = await from.readChunk(MAX_RELAY_BUFFER)) !== null;) await writeAll(to, c);
    await to.closeWrite();
    return;
  }
  let buf = new Uint8Array(MIN_RELAY_BUFFER);
  while (true) {
    const n = await from.read(buf);
    if (n === null) break;
    await writeAll(to, buf.subarray(0, n));
    // A full read means more is waiting: a bigger buffer moves it in fewer rounds.
    if (n === buf.length && buf.length < MAX_RELAY_BUFFER && budget.grow(buf.length)) {
      held.n += buf.length;
      buf = new Uint8Array(buf.length * 2);
    }
  }
  await to.closeWrite();
}

/**
 * Relays between `a` and `b` until both directions have ended; closes both before resolving.
 * Never rejects.
 */
export async function leanRelay(a: Conn, b: Conn, budget: RelayBudget): Promise<void> {
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
  const held = { n: 0 };
  try {
    await Promise.all([
      pump(a, b, budget, held).catch(closeBoth),
      pump(b, a, budget, held).catch(closeBoth),
    ]);
  } finally {
    closeBoth();
    budget.release(held.n);
  }
}
