/**
 * An in-memory duplex byte pipe: two {@linkcode Conn}s joined back to back, with bounded buffering
 * (writes wait while the direction holds `bufferBytes`). Production code uses it as is:
 * `src/dial/local.ts` hands a flow to kconnect's own services (its DNS server) over one, with no
 * delay and no rate limit. Tests and benchmarks also give it a one-way delay and a rate (to
 * emulate a real link) on a fake clock.
 *
 * @module
 */
import type { Conn } from "./conn.ts";
import { systemClock, type TimerClock as Clock } from "./clock.ts";

/** Options for {@linkcode memoryPipe}. */
export interface MemoryPipeOptions {
  /** One-way delay added to every write, ms. Default 0. */
  delayMs?: number;
  /** Serialisation rate per direction, bytes per second. Default unlimited. */
  bytesPerSecond?: number;
  /** Bytes a direction holds (in flight plus unread) before writers wait. Default 4 MiB. */
  bufferBytes?: number;
  /** Where delays and rates take their time from. Default the system clock. */
  clock?: Clock;
}

interface _Chunk {
  data: Uint8Array;
  off: number;
  at: number;
}

class _Direction {
  readonly chunks: _Chunk[] = [];
  head = 0;
  bytes = 0;
  /** Writer side finished: the reader gets EOF after the queued bytes. */
  writeClosed = false;
  /** Reader side gone: queued bytes are dropped and writes fail. */
  readClosed = false;
  nextFree = 0;
  #readWake: (() => void) | null = null;
  #writeWake: (() => void)[] = [];
  #timer: number | undefined;

  constructor(
    readonly delayMs: number,
    readonly bytesPerSecond: number,
    readonly bufferBytes: number,
    readonly clock: Clock,
  ) {}

  wakeReader(): void {
    if (this.#timer !== undefined) {
      this.clock.clearTimer(this.#timer);
      this.#timer = undefined;
    }
    const w = this.#readWake;
    this.#readWake = null;
    w?.();
  }

  wakeWriters(): void {
    const ws = this.#writeWake;
    this.#writeWake = [];
    for (const w of ws) w();
  }

  waitReadable(untilMs?: number): Promise<void> {
    return new Promise((resolve) => {
      this.#readWake = resolve;
      if (untilMs !== undefined) {
        this.#timer = this.clock.setTimer(() => {
          this.#timer = undefined;
          this.wakeReader();
        }, Math.max(0, untilMs - this.clock.now()));
      }
    });
  }

  waitWritable(): Promise<void> {
    return new Promise((resolve) => this.#writeWake.push(resolve));
  }

  async write(p: Uint8Array): Promise<number> {
    let off = 0;
    while (off < p.length) {
      if (this.readClosed || this.writeClosed) {
        throw new Deno.errors.BrokenPipe("memory pipe: write after close");
      }
      const space = this.bufferBytes - this.bytes;
      if (space <= 0) {
        await this.waitWritable();
        continue;
      }
      const take = Math.min(space, p.length - off);
      const now = this.clock.now();
      let at = now + this.delayMs;
      if (this.bytesPerSecond > 0) {
        this.nextFree = Math.max(now, this.nextFree) + (take * 1000) / this.bytesPerSecond;
        at = this.nextFree + this.delayMs;
      }
      this.chunks.push({ data: p.slice(off, off + take), off: 0, at });
      this.bytes += take;
      off += take;
      this.wakeReader();
    }
    return p.length;
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.readClosed) return null;
      if (this.head < this.chunks.length) {
        const now = this.clock.now();
        const first = this.chunks[this.head];
        if (first.at > now) {
          await this.waitReadable(first.at);
          continue;
        }
        let n = 0;
        while (n < p.length && this.head < this.chunks.length) {
          const c = this.chunks[this.head];
          if (c.at > now) break;
          const take = Math.min(p.length - n, c.data.length - c.off);
          p.set(c.data.subarray(c.off, c.off + take), n);
          c.off += take;
          n += take;
          if (c.off === c.data.length) {
            this.chunks[this.head++] = undefined as unknown as _Chunk;
            if (this.head > 1024 && this.head * 2 > this.chunks.length) {
              this.chunks.splice(0, this.head);
              this.head = 0;
            }
          }
        }
        this.bytes -= n;
        this.wakeWriters();
        return n;
      }
      if (this.writeClosed) return null;
      if (p.length === 0) return 0;
      await this.waitReadable();
    }
  }

  closeReader(): void {
    this.readClosed = true;
    this.chunks.length = 0;
    this.head = 0;
    this.bytes = 0;
    this.wakeReader();
    this.wakeWriters();
  }

  closeWriter(): void {
    this.writeClosed = true;
    this.wakeReader();
    this.wakeWriters();
  }
}

class _PipeEnd implements Conn {
  constructor(readonly incoming: _Direction, readonly outgoing: _Direction) {}
  read(p: Uint8Array): Promise<number | null> {
    return this.incoming.read(p);
  }
  write(p: Uint8Array): Promise<number> {
    return this.outgoing.write(p);
  }
  closeWrite(): Promise<void> {
    this.outgoing.closeWriter();
    return Promise.resolve();
  }
  close(): void {
    this.incoming.closeReader();
    this.outgoing.closeWriter();
  }
}

/**
 * Two connected in-memory {@linkcode Conn}s. What one writes the other reads, after
 * `delayMs`. `close()` on one end gives the other end end-of-stream after the bytes already
 * written, and makes its writes fail with `Deno.errors.BrokenPipe`; `closeWrite()` half-closes.
 *
 * @example
 * ```ts
 * import { memoryPipe } from "./pipe.ts";
 * const [a, b] = memoryPipe();
 * await a.write(new TextEncoder().encode("hi"));
 * await a.closeWrite();
 * const buf = new Uint8Array(8);
 * const n = await b.read(buf);
 * if (n !== 2 || (await b.read(buf)) !== null) throw new Error("unexpected");
 * a.close();
 * b.close();
 * ```
 */
export function memoryPipe(options: MemoryPipeOptions = {}): [Conn, Conn] {
  const delay = options.delayMs ?? 0;
  const rate = options.bytesPerSecond ?? 0;
  const size = options.bufferBytes ?? 4 * 1024 * 1024;
  if (!(delay >= 0) || !(rate >= 0) || !(size > 0)) {
    throw new RangeError("memoryPipe: delayMs and bytesPerSecond must be >= 0, bufferBytes > 0");
  }
  const clock = options.clock ?? systemClock;
  const ab = new _Direction(delay, rate, size, clock);
  const ba = new _Direction(delay, rate, size, clock);
  return [new _PipeEnd(ba, ab), new _PipeEnd(ab, ba)];
}
