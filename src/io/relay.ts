/**
 * Copies bytes both ways between two connections, with one bounded buffer per direction, so a
 * slow reader on either side holds back the other side's writer instead of growing memory.
 *
 * @module
 */
import type { Conn } from "./conn.ts";

/** Options for {@linkcode relay}. */
export interface RelayOptions {
  /** Buffer per direction, bytes. Default 65536. */
  bufferSize?: number;
  /** Closes both sides at once when aborted. */
  signal?: AbortSignal;
}

/** Bytes moved by {@linkcode relay}. */
export interface RelayResult {
  /** Bytes from `a` to `b`. */
  aToB: number;
  /** Bytes from `b` to `a`. */
  bToA: number;
}

async function pump(from: Conn, to: Conn, size: number, count: (n: number) => void): Promise<void> {
  // A connection that hands out its own buffers (a tunnel stream) is read without a copy.
  const buf = from.readChunk ? null : new Uint8Array(size);
  while (true) {
    const chunk = await readSome(from, buf, size);
    if (chunk === null) break;
    await writeAll(to, chunk);
    count(chunk.length);
  }
  await to.closeWrite();
}

/**
 * The next bytes from `from`: into `buf`, or, when `buf` is null, in a buffer of `from`'s own
 * (`Conn.readChunk`) of at most `max` bytes. Null at end of stream.
 */
export async function readSome(
  from: Conn,
  buf: Uint8Array | null,
  max: number,
): Promise<Uint8Array | null> {
  if (buf === null) return await from.readChunk!(max);
  const n = await from.read(buf);
  return n === null ? null : buf.subarray(0, n);
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
 * connections before resolving.
 */
export async function relay(a: Conn, b: Conn, options: RelayOptions = {}): Promise<RelayResult> {
  const size = options.bufferSize ?? 65536;
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
  const guard = (p: Promise<void>) => p.catch(closeBoth);
  await Promise.all([
    guard(pump(a, b, size, (n) => result.aToB += n)),
    guard(pump(b, a, size, (n) => result.bToA += n)),
  ]);
  options.signal?.removeEventListener("abort", onAbort);
  closeBoth();
  return result;
}
