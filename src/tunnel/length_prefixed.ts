/**
 * Length-prefixed messages on a {@linkcode Conn}: u16 for UDP datagrams and DNS messages (as
 * in DNS over TCP), u32 with a maximum for control JSON. {@linkcode FrameReader} buffers reads
 * and can hand what it read ahead back as a plain Conn.
 *
 * @module
 */
import type { Conn } from "../io/conn.ts";
import { ProtocolError } from "./errors.ts";
import { writeAll } from "../io/relay.ts";

/** Writes all of a buffer (looping over partial writes); lives with the relay. */
export { writeAll };

/** Default largest u32 frame, bytes (1 MiB). */
export const DEFAULT_MAX_U32_FRAME = 1024 * 1024;

/**
 * Writes `payload` with a u16 big-endian length in front, in one write. RangeError when
 * longer than 65535 bytes.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "../io/pipe.ts";
 * import { FrameReader, writeU16Frame } from "./length_prefixed.ts";
 * const [a, b] = memoryPipe();
 * await writeU16Frame(a, new Uint8Array([1, 2, 3]));
 * const m = await new FrameReader(b).readU16Frame();
 * if (m?.length !== 3) throw new Error("unexpected");
 * a.close();
 * b.close();
 * ```
 */
export async function writeU16Frame(conn: Conn, payload: Uint8Array): Promise<void> {
  if (payload.length > 0xffff) {
    throw new RangeError(`write u16 frame: ${payload.length} bytes exceed 65535`);
  }
  const out = new Uint8Array(2 + payload.length);
  out[0] = payload.length >>> 8;
  out[1] = payload.length & 0xff;
  out.set(payload, 2);
  await writeAll(conn, out);
}

/**
 * Writes `payload` with a u32 big-endian length in front, in one write. RangeError when
 * longer than `maxLen` (default 1 MiB).
 *
 * @example
 * ```ts
 * import { memoryPipe } from "../io/pipe.ts";
 * import { FrameReader, writeU32Frame } from "./length_prefixed.ts";
 * const [a, b] = memoryPipe();
 * await writeU32Frame(a, new TextEncoder().encode("{}"));
 * const m = await new FrameReader(b).readU32Frame(1024);
 * if (m?.length !== 2) throw new Error("unexpected");
 * a.close();
 * b.close();
 * ```
 */
export async function writeU32Frame(
  conn: Conn,
  payload: Uint8Array,
  maxLen: number = DEFAULT_MAX_U32_FRAME,
): Promise<void> {
  if (payload.length > maxLen) {
    throw new RangeError(`write u32 frame: ${payload.length} bytes exceed ${maxLen}`);
  }
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  await writeAll(conn, out);
}

/**
 * Buffered reader of exact byte counts and length-prefixed frames from a {@linkcode Conn}.
 * Returns null at a clean end of stream (between messages); end of stream inside a message
 * throws {@linkcode ProtocolError}.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "../io/pipe.ts";
 * import { FrameReader } from "./length_prefixed.ts";
 * const [a, b] = memoryPipe();
 * await a.write(new Uint8Array([1, 2, 3, 4, 5]));
 * await a.closeWrite();
 * const r = new FrameReader(b);
 * const head = await r.readExact(2);
 * const rest = new Uint8Array(8);
 * const n = await r.asConn().read(rest);
 * if (head?.[1] !== 2 || n !== 3) throw new Error("unexpected");
 * b.close();
 * ```
 */
export class FrameReader {
  #conn: Conn;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;
  #eof = false;

  constructor(conn: Conn, options: { bufferSize?: number } = {}) {
    this.#conn = conn;
    this.#buf = new Uint8Array(options.bufferSize ?? 16 * 1024);
  }

  /** Bytes read ahead and not yet handed out. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads until `n` bytes are buffered (or end of stream); returns false at end of stream. */
  async #fill(n: number): Promise<boolean> {
    while (this.#end - this.#start < n) {
      if (this.#eof) return false;
      if (this.#buf.length - this.#start < n) {
        if (this.#buf.length >= n) {
          this.#buf.copyWithin(0, this.#start, this.#end);
        } else {
          const next = new Uint8Array(n);
          next.set(this.#buf.subarray(this.#start, this.#end), 0);
          this.#buf = next;
        }
        this.#end -= this.#start;
        this.#start = 0;
      }
      const r = await this.#conn.read(this.#buf.subarray(this.#end));
      if (r === null) {
        this.#eof = true;
        return this.#end - this.#start >= n;
      }
      this.#end += r;
    }
    return true;
  }

  /**
   * Exactly `n` bytes (a new buffer), or null at end of stream before the first byte. Throws
   * {@linkcode ProtocolError} at end of stream after some bytes.
   */
  async readExact(n: number): Promise<Uint8Array | null> {
    if (!(await this.#fill(n))) {
      const have = this.#end - this.#start;
      if (have === 0) return null;
      throw new ProtocolError(`read ${n} bytes: stream ended after ${have}`);
    }
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /** One u16-length-prefixed message, or null at a clean end of stream. */
  async readU16Frame(): Promise<Uint8Array | null> {
    const h = await this.readExact(2);
    if (h === null) return null;
    const len = (h[0] << 8) | h[1];
    return this.#body(len);
  }

  /** One u32-length-prefixed message of at most `maxLen` bytes, or null at end of stream. */
  async readU32Frame(maxLen: number = DEFAULT_MAX_U32_FRAME): Promise<Uint8Array | null> {
    const h = await this.readExact(4);
    if (h === null) return null;
    const len = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
    if (len > maxLen) throw new ProtocolError(`read u32 frame: ${len} bytes exceed ${maxLen}`);
    return this.#body(len);
  }

  async #body(len: number): Promise<Uint8Array> {
    if (len === 0) return new Uint8Array(0);
    const body = await this.readExact(len);
    if (body === null) throw new ProtocolError(`read frame: stream ended before ${len}-byte body`);
    return body;
  }

  /**
   * A {@linkcode Conn} that reads the bytes buffered here first, then from the underlying
   * connection; writes and closes go straight through.
   */
  asConn(): Conn {
    const conn = this.#conn;
    return {
      read: async (p: Uint8Array): Promise<number | null> => {
        const have = this.#end - this.#start;
        if (have > 0) {
          const n = Math.min(have, p.length);
          p.set(this.#buf.subarray(this.#start, this.#start + n));
          this.#start += n;
          return n;
        }
        if (this.#eof) return null;
        return await conn.read(p);
      },
      write: (p: Uint8Array) => conn.write(p),
      closeWrite: () => conn.closeWrite(),
      close: () => conn.close(),
    };
  }
}

/**
 * Sends datagrams on a stream as u16-framed messages, one after another, without waiting: like
 * a socket buffer, at most `limit` wait their turn and further ones are dropped. `onError` is
 * called once a write fails (the stream is gone).
 */
export function datagramSender(
  conn: Conn,
  onError: () => void,
  limit = 256,
): (payload: Uint8Array) => void {
  let pending = 0;
  let chain = Promise.resolve();
  return (payload) => {
    if (pending >= limit) return;
    pending++;
    chain = chain.then(() => writeU16Frame(conn, payload)).catch(onError).finally(() => {
      pending--;
    });
  };
}
