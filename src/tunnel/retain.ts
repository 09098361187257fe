/**
 * The bytes a resumable session has sent and the peer has not yet acknowledged: what it sends
 * again, from the offset the peer names, when the session resumes on a new transport. A queue of
 * fixed-size blocks (a few recycled), so that keeping a copy of each transport write allocates
 * nothing in the steady state. No I/O.
 *
 * Offsets count the session's byte stream from its start (every byte `pollTransmit` produced,
 * over every transport the session used).
 *
 * @module
 */

/** Size of one block. */
const BLOCK = 64 * 1024;
/** Free blocks kept for reuse (1 MiB). */
const SPARE_BLOCKS = 16;

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
  #blocks: Uint8Array[] = [];
  #spare: Uint8Array[] = [];
  /** Offset of the first retained byte. */
  #start = 0;
  /** Offset of the first byte of `#blocks[0]`. */
  #base = 0;
  #end = 0;

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
    let off = 0;
    while (off < bytes.length) {
      const fill = (this.#end - this.#base) % BLOCK;
      if (this.#end - this.#base === this.#blocks.length * BLOCK) {
        this.#blocks.push(this.#spare.pop() ?? new Uint8Array(BLOCK));
      }
      const block = this.#blocks[this.#blocks.length - 1];
      const n = Math.min(BLOCK - fill, bytes.length - off);
      block.set(bytes.subarray(off, off + n), fill);
      off += n;
      this.#end += n;
    }
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
    while (this.#blocks.length > 0 && this.#base + BLOCK <= offset) {
      const b = this.#blocks.shift()!;
      if (this.#spare.length < SPARE_BLOCKS) this.#spare.push(b);
      this.#base += BLOCK;
    }
    if (this.#start === this.#end && this.#blocks.length === 1) {
      // Empty: start the next append at the top of the block.
      if (this.#spare.length < SPARE_BLOCKS) this.#spare.push(this.#blocks[0]);
      this.#blocks = [];
      this.#base = this.#end;
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
    while (n < out.length && at < this.#end) {
      const rel = at - this.#base;
      const block = this.#blocks[Math.floor(rel / BLOCK)];
      const inBlock = rel % BLOCK;
      const take = Math.min(BLOCK - inBlock, this.#end - at, out.length - n);
      out.set(block.subarray(inBlock, inBlock + take), n);
      n += take;
      at += take;
    }
    return n;
  }

  /** Forgets everything (the session ended); spare blocks too. */
  clear(): void {
    this.#blocks = [];
    this.#spare = [];
    this.#start = this.#end;
    this.#base = this.#end;
  }
}
