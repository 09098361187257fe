/**
 * The bytes a resumable session has sent and the peer has not yet acknowledged: what it sends
 * again, from the offset the peer names, when the session resumes on a new transport. No I/O.
 *
 * A large transport write is kept as it is (the buffer it was written from, which the session's
 * driver then no longer uses: no copy on the bulk path); a small one is copied, so a 12-byte Ack
 * does not hold a 256 KiB buffer. A kept buffer is handed back through `release` once the peer
 * has all of it, for the driver to reuse.
 *
 * Offsets count the session's byte stream from its start (every byte `pollTransmit` produced,
 * over every transport the session used).
 *
 * @module
 */

interface _Piece {
  data: Uint8Array;
  /** Offset of `data[0]` in the stream. */
  at: number;
  /** The caller's buffer, given back on release (not a copy). */
  kept: boolean;
}

/**
 * The retained bytes, from {@linkcode RetainBuffer.start} (everything before it is acknowledged)
 * to {@linkcode RetainBuffer.end} (everything sent).
 *
 * @example
 * ```ts
 * import { RetainBuffer } from "./retain.ts";
 * const r = new RetainBuffer();
 * r.append(new Uint8Array([1, 2, 3, 4, 5]));
 * r.ackTo(2); // the peer has the first two bytes
 * const out = new Uint8Array(8);
 * const n = r.copyFrom(2, out);
 * if (n !== 3 || out[0] !== 3 || r.size !== 3 || r.end !== 5) throw new Error("unexpected");
 * ```
 */
export class RetainBuffer {
  #pieces: _Piece[] = [];
  #head = 0;
  #start = 0;
  #end = 0;
  readonly #release: (buf: Uint8Array) => void;

  /** `release` gets back each buffer given to {@linkcode RetainBuffer.keep} once acknowledged. */
  constructor(release: (buf: Uint8Array) => void = () => {}) {
    this.#release = release;
  }

  /** Offset of the first byte not yet acknowledged. */
  get start(): number {
    return this.#start;
  }

  /** Offset just past the last byte sent. */
  get end(): number {
    return this.#end;
  }

  /** Bytes retained. */
  get size(): number {
    return this.#end - this.#start;
  }

  /** Copies `bytes` (just sent) in at the end. */
  append(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#push({ data: bytes.slice(), at: this.#end, kept: false });
  }

  /**
   * Keeps `bytes` (just sent) at the end without copying: the caller must not write to it
   * again until it comes back through `release`.
   */
  keep(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#push({ data: bytes, at: this.#end, kept: true });
  }

  #push(p: _Piece): void {
    this.#pieces.push(p);
    this.#end += p.data.length;
  }

  /**
   * The peer has everything before `offset`: forgets it. Throws RangeError when `offset` is
   * before {@linkcode RetainBuffer.start} or past {@linkcode RetainBuffer.end}.
   */
  ackTo(offset: number): void {
    if (offset < this.#start || offset > this.#end) {
      throw new RangeError(`retain: ack ${offset} outside [${this.#start}, ${this.#end}]`);
    }
    this.#start = offset;
    const ps = this.#pieces;
    while (this.#head < ps.length) {
      const p = ps[this.#head];
      if (p.at + p.data.length > offset) break;
      this.#head++;
      if (p.kept) this.#release(p.data);
    }
    if (this.#head === ps.length) {
      this.#pieces = [];
      this.#head = 0;
    } else if (this.#head > 64 && this.#head * 2 > ps.length) {
      this.#pieces = ps.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * Copies retained bytes from `offset` into `out`; returns how many (less than `out.length`
   * only at the end). `offset` must be within [start, end].
   */
  copyFrom(offset: number, out: Uint8Array): number {
    if (offset < this.#start || offset > this.#end) {
      throw new RangeError(`retain: read at ${offset} outside [${this.#start}, ${this.#end}]`);
    }
    let n = 0;
    let at = offset;
    for (let i = this.#head; i < this.#pieces.length && n < out.length; i++) {
      const p = this.#pieces[i];
      const pEnd = p.at + p.data.length;
      if (pEnd <= at) continue;
      const from = at - p.at;
      const take = Math.min(pEnd - at, out.length - n);
      out.set(p.data.subarray(from, from + take), n);
      n += take;
      at += take;
    }
    return n;
  }

  /** Forgets everything (the session ended); kept buffers are released. */
  clear(): void {
    for (let i = this.#head; i < this.#pieces.length; i++) {
      const p = this.#pieces[i];
      if (p.kept) this.#release(p.data);
    }
    this.#pieces = [];
    this.#head = 0;
    this.#start = this.#end;
  }
}
